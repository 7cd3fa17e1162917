import gzip
import json

import pytest

from linkbert.corpus import Document, open_reader
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
