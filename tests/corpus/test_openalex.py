"""OpenAlex works: saved API pages and a snapshot part file (real works, tests/data/openalex/)."""

import gzip
import json
import re

import pytest

from linkbert.corpus import Document, Skipped, open_reader
from linkbert.corpus.openalex import abstract_text, inverted_index, short_id
from linkbert.errors import BadInput

from conftest import TEST_DATA
from hostile import bad, outcomes, small_reader, time_limit

API = TEST_DATA / "openalex" / "api"
SNAPSHOT = TEST_DATA / "openalex" / "snapshot"
PART = SNAPSHOT / "data" / "works" / "updated_date=2025-06-06" / "part_000.gz"


def api_works() -> list[dict]:
    return [w for page in sorted(API.glob("*.json")) for w in json.loads(page.read_text())["results"]]


def snapshot_works() -> list[dict]:
    return [json.loads(line) for line in gzip.open(PART, "rt", encoding="utf-8")]


def test_saved_api_pages_give_their_works():
    results = outcomes(open_reader("openalex", str(API)))
    # 3 papers citing 2 key papers (page 2 of the citing search is empty), in file name order
    assert [d.id for d in results] == ["W4311043552", "W4293919086", "W4387316167", "W3046863325", "W3045921891"]
    first = results[3]
    assert first.title.startswith("Trends of Publications' Citations and Altmetrics")
    assert first.text.startswith(first.title + "\n\n") and len(first.text) > len(first.title) + 400
    assert all(link.startswith("https://openalex.org/W") for link in first.links)
    assert "https://openalex.org/W3046863325" in results[0].links  # a citing paper cites a key paper


def test_the_abstract_is_rebuilt_exactly_from_the_inverted_index():
    indexed = [w for w in api_works() + snapshot_works() if w.get("abstract_inverted_index")]
    assert len(indexed) == 35
    for work in indexed:  # the inverse of OpenAlex's own indexing, on every real index
        assert inverted_index(abstract_text(work["abstract_inverted_index"])) == work["abstract_inverted_index"]
    # a record that carries both: openalexPro's export of the same works has the abstract as text
    import zstandard

    exported = {}
    with zstandard.ZstdDecompressor().stream_reader(open(TEST_DATA / "openalexpro" / "cited_works.jsonl.zst", "rb")) as f:
        for line in filter(str.strip, f.read().decode("utf-8").splitlines()):
            work = json.loads(line)
            exported[work["id"]] = work.get("abstract")
    both = [w for w in snapshot_works() if w.get("abstract_inverted_index") and exported.get(w["id"])]
    assert len(both) == 30
    same = [w for w in both if abstract_text(w["abstract_inverted_index"]) == exported[w["id"]]]
    assert len(same) == 29
    # the one other: its index skips a position (two spaces in a row), which the export closes up
    (gap,) = [w for w in both if w not in same]
    rebuilt = abstract_text(gap["abstract_inverted_index"])
    assert "  " in rebuilt and re.sub(" +", " ", rebuilt) == exported[gap["id"]]
    assert "sampling.\r\n\r\nAn" in rebuilt  # OpenAlex splits at spaces only: line breaks stay in their word


def test_inverted_index_round_trip_and_its_errors():
    text = "A  study of\nthings. A study"
    assert inverted_index(text) == {"A": [0, 4], "study": [2, 5], "of\nthings.": [3]}  # position 1: the empty piece
    assert abstract_text(inverted_index(text)) == text
    assert abstract_text({}) == ""
    for index, words in (({"a": [0], "b": [0]}, "two words at position 0"), ({"a": "0"}, "list of non-negative"),
                         ({"a": [-1]}, "non-negative"), ({"a": [10 ** 12]}, "positions run to"), ([1], "map words")):
        with pytest.raises(BadInput, match=words) as info:
            abstract_text(index, "f.json", "results[0]")
        assert info.value.reason == "bad_abstract_index"


def test_a_snapshot_folder_and_a_part_file_read_alike():
    from_folder = outcomes(open_reader("openalex", str(SNAPSHOT)))
    assert from_folder == outcomes(open_reader("openalex", str(PART)))
    docs = [r for r in from_folder if isinstance(r, Document)]
    assert len(docs) == 30 and from_folder.count(Skipped("no_abstract")) == 11
    glove = next(d for d in docs if d.id == "W2250539671")
    assert glove.title == "Glove: Global Vectors for Word Representation"


def test_url_and_short_ids_resolve_alike():
    reader = open_reader("openalex", str(API))
    assert short_id("https://openalex.org/W123") == short_id("W123") == short_id("https://api.openalex.org/works/w123/")
    assert tuple(reader.link_keys("https://openalex.org/W123")) == tuple(reader.link_keys("W123")) == ("id:W123",)
    assert tuple(reader.document_keys(Document("W123", "t", "x"))) == ("id:W123",)


def test_labels_from_a_field_path():
    from linkbert.corpus.labels import document_labels

    assert document_labels("openalex", API) == {}  # only when asked
    labels = document_labels("openalex", API, label_field="primary_topic.field.display_name")
    assert labels["W4387316167"] == "Computer Science" and labels["W4311043552"] == "Social Sciences"
    assert len(labels) == 5
    assert document_labels("openalex", API, label_field="primary_topic.nothing") == {}


def test_a_repeated_work_id_labels_as_its_first_record(tmp_path):
    """Prepare keeps the first work of an id; its label (or its lack of one) is the one read."""
    from linkbert.corpus.labels import document_labels

    field = "primary_topic.field.display_name"
    unlabelled, labelled = dict(snapshot_works()[0]), dict(snapshot_works()[0])
    unlabelled.pop("primary_topic", None)
    labelled["primary_topic"] = {"field": {"display_name": "Later"}}
    (tmp_path / "works.json").write_text("".join(json.dumps(w) + "\n" for w in (unlabelled, labelled)))
    assert document_labels("openalex", tmp_path, label_field=field) == {}
    (tmp_path / "works.json").write_text("".join(json.dumps(w) + "\n" for w in (labelled, unlabelled)))
    assert document_labels("openalex", tmp_path, label_field=field) == {short_id(labelled["id"]): "Later"}


def test_records_of_other_entities_and_other_files(tmp_path):
    works = tmp_path / "data" / "works" / "updated_date=2024-01-01"
    works.mkdir(parents=True)
    work = snapshot_works()[0]
    (works / "part_000.gz").write_bytes(gzip.compress((json.dumps(work) + "\n").encode()))
    (works.parent / "manifest").write_text('{"entries": []}')  # not read
    authors = tmp_path / "data" / "authors" / "updated_date=2024-01-01"
    authors.mkdir(parents=True)
    (authors / "part_000.gz").write_bytes(gzip.compress(b'{"id": "https://openalex.org/A5023888391"}\n'))
    merged = tmp_path / "data" / "merged_ids" / "works"
    merged.mkdir(parents=True)
    (merged / "2024-01-01.csv.gz").write_bytes(gzip.compress(b"merge_date,id,merge_into_id\n"))
    results = outcomes(open_reader("openalex", str(tmp_path)))
    assert results == [Skipped("not_a_work"), Document(short_id(work["id"]), work["title"],
                                                       results[1].text, tuple(work["referenced_works"]))]


def test_a_json_file_of_json_lines_a_list_and_a_single_work(tmp_path):
    works = snapshot_works()[:3]
    (tmp_path / "lines.json").write_text("".join(json.dumps(w) + "\n" for w in works))
    (tmp_path / "list.json").write_text(json.dumps(works[:2]))
    (tmp_path / "one.json").write_text(json.dumps(works[2]))
    ids = [r.id if isinstance(r, Document) else r for r in outcomes(open_reader("openalex", str(tmp_path)))]
    short = [short_id(w["id"]) for w in works]
    # lines.json, list.json, one.json
    expected = [i if w.get("abstract_inverted_index") else Skipped("no_abstract") for i, w in zip(short, works)]
    assert ids == expected + expected[:2] + expected[2:]


# -- hostile input ------------------------------------------------------------------------------

def test_one_bad_work_costs_only_itself(tmp_path):
    good = snapshot_works()[0]
    lines = [json.dumps(good), '{"id": "https://openalex.org/W1", "title": "t", "abstract_inverted_index": {"a": [0], "b": [0]}}',
             "{not json", '{"title": "no id"}', '{"id": "W2", "title": 7}', '["a list"]',
             '{"id": "W3", "title": null, "display_name": null, "abstract_inverted_index": null}',
             '{"id": "W4", "title": "t", "abstract_inverted_index": {"x": [0]}, "referenced_works": "W1"}',
             json.dumps(good)]
    path = tmp_path / "part_000.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    results = outcomes(open_reader("openalex", str(path)))
    assert [e.reason for e in bad(results)] == ["bad_abstract_index", "malformed_json", "missing_field", "wrong_type",
                                                "malformed_json", "wrong_type"]
    assert all(e.path == str(path) and e.location.startswith("line ") for e in bad(results))
    assert Skipped("no_text") in results
    assert isinstance(results[0], Document) and results[-1] == results[0]


def test_symlinks_out_of_the_input_oversized_records_and_truncated_parts(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.gz").write_bytes(gzip.compress(json.dumps(snapshot_works()[0]).encode()))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "evil.gz").symlink_to(outside / "secret.gz")
    data = gzip.compress(PART.read_bytes() and gzip.decompress(PART.read_bytes()))
    (corpus / "part_000.gz").write_bytes(data[: len(data) // 2])
    (corpus / "page.json").write_text(json.dumps({"meta": {}, "results": snapshot_works()[:20]}))
    with time_limit(20):
        results = outcomes(small_reader("openalex", corpus, limit=100_000))
    assert results[0] == Skipped("outside_input")
    reasons = [(e.path, e.reason, e.fatal) for e in bad(results)]
    assert (str(corpus / "page.json"), "record_too_large", False) in reasons  # a page is one record
    assert (str(corpus / "part_000.gz"), "truncated_file", True) in reasons  # the works before the cut are kept
    assert sum(isinstance(r, Document) for r in results) > 5
