import gzip
import json

import pytest

from linkbert.corpus import Document, Skipped, open_reader
from linkbert.errors import BadInput


def read_all(path):
    reader = open_reader("jsonl", str(path))
    return [reader.parse(record) for record in reader.records()]


def test_reads_the_documented_schema(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"id": "Q1", "title": "Paris", "text": "Paris is big.", "links": ["Q2", "France", 7]}) + "\n\n"
        + json.dumps({"id": 7, "text": "No title, no links."}) + "\n", encoding="utf-8")
    docs = read_all(path)
    assert docs == [Document("Q1", "Paris", "Paris is big.", ("Q2", "France", "7")),
                    Document("7", "", "No title, no links.", ())]
    reader = open_reader("jsonl", str(path))
    assert tuple(reader.document_keys(docs[0])) == ("id:Q1", "title:Paris")
    assert tuple(reader.link_keys("France")) == ("id:France", "title:France")


def test_folder_of_compressed_files_in_name_order(tmp_path):
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"id": "b", "text": "second"}) + "\n")
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "a", "text": "first"}) + "\n")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [d.id for d in read_all(tmp_path)] == ["a", "b"]


@pytest.mark.parametrize("line, reason, words", [
    (b'{"id": "x", "text": "unterminated}', "malformed_json", "not valid JSON"),
    (b'["id", "text"]', "malformed_json", "expected a JSON object"),
    (b'{"title": "t", "text": "no id"}', "missing_field", '"id"'),
    (b'{"id": "x", "title": "t"}', "missing_field", '"text"'),
    (b'{"id": "x", "text": 5}', "wrong_type", '"text" must be a str'),
    (b'{"id": "x", "text": "t", "links": "y"}', "wrong_type", '"links"'),
    (b'{"id": "x", "text": "caf\xe9"}', "invalid_utf8", "invalid UTF-8"),
])
def test_bad_lines_name_file_line_and_problem(tmp_path, line, reason, words):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "ok", "text": "fine"}\n' + line + b"\n")
    with pytest.raises(BadInput) as info:
        read_all(path)
    assert info.value.reason == reason and info.value.location == "line 2"
    assert str(path) in str(info.value) and words in str(info.value)


def test_truncated_gzip_is_fatal_and_named(tmp_path):
    data = gzip.compress(b"".join(json.dumps({"id": i, "text": "x" * 50}).encode() + b"\n" for i in range(2000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput) as info:
        read_all(path)
    assert info.value.reason == "truncated_file" and info.value.fatal and str(path) in str(info.value)


def test_missing_path(tmp_path):
    with pytest.raises(BadInput, match="does not exist") as info:
        read_all(tmp_path / "nope.jsonl")
    assert info.value.reason == "missing_path"


# -- hostile input: nothing outside the input, bounded records, one bad line costs one line -----

def doc_line(doc_id, text="words") -> bytes:
    return json.dumps({"id": doc_id, "text": text}).encode() + b"\n"


def test_folder_reads_only_regular_files_inside_it_and_counts_the_rest(tmp_path):
    import os

    from hostile import outcomes, time_limit

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(doc_line("secret"))
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.jsonl").write_bytes(doc_line("a"))
    (corpus / "sub" / "b.jsonl").write_bytes(doc_line("b"))
    (corpus / "alias.jsonl").symlink_to(corpus / "a.jsonl")  # inside the folder: followed
    (corpus / "evil.jsonl").symlink_to(outside / "secret.jsonl")
    (corpus / "zero.jsonl").symlink_to("/dev/zero")
    (corpus / "gone.jsonl").symlink_to(corpus / "missing.jsonl")
    (corpus / "linked").symlink_to(outside, target_is_directory=True)  # a folder symlink: not entered
    os.mkfifo(corpus / "pipe.jsonl")
    with time_limit(10):
        results = outcomes(open_reader("jsonl", str(corpus)))
    # in relative-path order: a, alias, evil, gone, pipe, sub/b, zero
    assert results == [Document("a", "", "words"), Document("a", "", "words"), Skipped("outside_input"),
                       Skipped("broken_link"), Skipped("not_a_regular_file"), Document("b", "", "words"),
                       Skipped("outside_input")]


def test_line_longer_than_the_limit_is_skipped_in_bounded_memory(tmp_path):
    from hostile import bad, outcomes, peak_bytes, small_reader

    path = tmp_path / "long.jsonl.gz"
    fits = b'{"id": "fits", "text": "' + b"y" * (1000 - 26) + b'"}'
    assert len(fits) == 1000
    with gzip.open(path, "wb") as f:  # 30 MB of one line compress to 30 kB
        f.write(doc_line("first") + b'{"id": "long", "text": "' + b"x" * 30_000_000 + b'"}\n'
                + fits + b"\n" + fits + b"z\n" + doc_line("last"))
    results, peak = peak_bytes(lambda: outcomes(small_reader("jsonl", path, 1000)))
    assert peak < 2_000_000
    assert [r.id for r in results if isinstance(r, Document)] == ["first", "fits", "last"]
    assert [(e.location, e.reason, e.fatal) for e in bad(results)] == [
        ("line 2", "record_too_large", False), ("line 4", "record_too_large", False)]
    assert str(path) in str(bad(results)[0]) and "1,000 bytes" in str(bad(results)[0])


@pytest.mark.parametrize("line, reason, words", [
    (b'{"id": "x", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deeply_nested", "nested too deeply"),
    (b'{"id": "x", "text": "t", "links": [' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"]}",
     "too_deeply_nested", "nested"),
    (b'{"id": ' + b"7" * 5000 + b', "text": "t"}', "number_too_long", "more than 4,300 digits"),
    (b'{"id": "x", "text": "half \\ud800 a pair"}', "invalid_text", 'field "text" holds a lone surrogate (U+D800'),
    (b'{"id": "x\\udfff", "text": "t"}', "invalid_text", 'field "id"'),
    (b'{"id": "x", "title": "\\ud83d", "text": "t"}', "invalid_text", 'field "title"'),
    (b'{"id": "x", "text": "t", "links": ["ok", "\\udc80"]}', "invalid_text", 'field "links"'),
    (b"\x00\x01\xfe\xff garbage \x89PNG", "invalid_utf8", "invalid UTF-8"),
    (b"\x00\x01 garbage", "malformed_json", "not valid JSON"),
])
def test_one_hostile_line_is_one_named_bad_record_and_the_others_are_kept(tmp_path, line, reason, words):
    from hostile import bad, outcomes

    path = tmp_path / "hostile.jsonl"
    path.write_bytes(doc_line("before") + line + b"\n" + doc_line("after"))
    results = outcomes(open_reader("jsonl", str(path)))
    assert [r.id for r in results if isinstance(r, Document)] == ["before", "after"]
    (error,) = bad(results)
    assert (error.path, error.location, error.reason, error.fatal) == (str(path), "line 2", reason, False)
    assert words in str(error)


def test_surrogate_pairs_are_text(tmp_path):
    path = tmp_path / "emoji.jsonl"
    path.write_bytes(b'{"id": "x", "text": "a \\ud83d\\ude00 b"}\n')
    assert read_all(path)[0].text == "a \U0001F600 b"


def test_a_broken_file_in_a_folder_ends_that_file_only(tmp_path):
    from hostile import bad, outcomes

    whole = gzip.compress(b"".join(doc_line(f"a{i}", "x" * 50) for i in range(2000)))
    (tmp_path / "a.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "b.jsonl").write_bytes(doc_line("b"))
    results = outcomes(open_reader("jsonl", str(tmp_path)))
    (error,) = bad(results)
    assert (error.path, error.reason, error.fatal) == (str(tmp_path / "a.jsonl.gz"), "truncated_file", True)
    assert results.index(error) == len(results) - 2 and results[-1].id == "b"  # b.jsonl is still read
    assert len(results) > 100  # and a.jsonl.gz's lines before the break are kept


def test_empty_and_blank_files_give_nothing(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.jsonl.gz").write_bytes(gzip.compress(b"\n \n\t\n"))
    assert read_all(tmp_path) == []


def test_a_named_folder_without_files_and_a_file_that_is_a_folder(tmp_path):
    (tmp_path / "folder.jsonl").mkdir()  # a folder named like a file is not a file
    with pytest.raises(BadInput) as info:
        read_all(tmp_path)
    assert info.value.reason == "missing_path" and info.value.fatal


def test_labels_are_read_where_records_have_them(tmp_path):
    from linkbert.corpus.labels import document_labels

    path = tmp_path / "labelled.jsonl"
    path.write_text('{"id": 1, "text": "a", "label": "Theory"}\n{"id": "b", "text": "b"}\n'
                    '{"id": "c", "text": "c", "label": 3}\nnot json\n')
    assert document_labels("jsonl", path) == {"1": "Theory", "c": "3"}
    assert document_labels("wikispeedia", tmp_path) == {}
    path.write_text('{"id": 1, "text": "a", "label": ["x"]}\n')
    with pytest.raises(BadInput, match='line 1: field "label" must be a string or an integer, found list'):
        document_labels("jsonl", path)


@pytest.mark.data
def test_cora_labels(shared_data):
    from collections import Counter

    from linkbert.corpus.labels import document_labels

    labels = document_labels("jsonl", shared_data / "cora" / "cora.jsonl")
    assert len(labels) == 2708 and Counter(labels.values())["Neural_Networks"] == 818
