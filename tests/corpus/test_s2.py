"""Semantic Scholar: the datasets API's sample release files and S2ORC records (tests/data/s2/)."""

import gzip
import json
from collections import Counter

from linkbert.corpus import Document, Skipped, open_reader
import pytest

from linkbert.errors import ConfigError

from conftest import TEST_DATA
from hostile import bad, outcomes, small_reader

S2 = TEST_DATA / "s2"


def counted(results) -> Counter:
    return Counter("document" if isinstance(r, Document) else r.reason for r in results)


def test_the_official_sample_release_is_read_and_every_record_counted():
    # S2's samples of papers, abstracts and citations are drawn independently: no corpus id is in
    # two of them, so nothing joins; every record is still read and counted by reason
    results = outcomes(open_reader("s2", str(S2 / "release")))
    assert counted(results) == {"no_abstract": 100, "abstract_of_unknown_paper": 100,
                                "citation_without_cited_paper": 23, "citation_from_unknown_paper": 77}


def write_release(root, papers, abstracts=(), citations=()):
    """A release folder in the official schema: papers/, abstracts/, citations/ shards (gzip)."""
    for name, rows in (("papers", papers), ("abstracts", abstracts), ("citations", citations)):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "part-0.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
        (root / name / "README.txt").write_text("the dataset's licence, not a shard")
    return root


def test_papers_join_their_abstracts_and_citations(tmp_path):
    # synthetic records in the official schema (the real samples share no corpus id: see above)
    papers = [json.loads(line) for line in gzip.open(S2 / "release" / "papers" / "papers-sample.jsonl.gz")][:3]
    abstracts = [json.loads(line) for line in gzip.open(S2 / "release" / "abstracts" / "abstracts-sample.jsonl.gz")][:3]
    ids = [p["corpusid"] for p in papers]
    for paper_id, abstract in zip(ids, abstracts):
        abstract["corpusid"] = paper_id
    abstracts[2]["corpusid"] = 1  # an abstract of a paper that is not there
    citations = [{"citingcorpusid": str(ids[0]), "citedcorpusid": str(ids[1]), "isinfluential": False},
                 {"citingcorpusid": str(ids[0]), "citedcorpusid": "999", "isinfluential": False},  # dangling
                 {"citingcorpusid": str(ids[1]), "citedcorpusid": str(ids[0])},
                 {"citingcorpusid": str(ids[0]), "citedcorpusid": None},
                 {"citingcorpusid": "5", "citedcorpusid": str(ids[0])}]
    root = write_release(tmp_path / "release", papers, abstracts, citations)
    results = outcomes(open_reader("s2", str(root)))
    docs = [r for r in results if isinstance(r, Document)]
    assert [d.id for d in docs] == [str(ids[0]), str(ids[1])]
    assert docs[0].links == (str(ids[1]), "999") and docs[1].links == (str(ids[0]),)
    assert docs[0].text == papers[0]["title"] + "\n\n" + abstracts[0]["abstract"]
    assert counted(results) == {"document": 2, "no_abstract": 1, "citation_without_cited_paper": 1,
                                "abstract_of_unknown_paper": 1, "citation_from_unknown_paper": 1}


def test_s2orc_2020_metadata_excerpt():
    results = outcomes(open_reader("s2", str(S2 / "s2orc_2020_metadata_excerpt.jsonl")))
    docs = [r for r in results if isinstance(r, Document)]
    assert counted(results) == {"document": 40, "no_abstract": 114}
    assert all(d.id.isdigit() and d.text.startswith(d.title + "\n\n") for d in docs)
    assert sum(len(d.links) for d in docs) == 113  # outbound_citations: corpus ids


def test_s2orc_2019_record_takes_its_bibliography_links():
    (doc,) = outcomes(open_reader("s2", str(S2 / "s2orc_2019_example_paper.jsonl")))
    assert doc.id == "15772371" and doc.title.startswith("Artificial diets for rearing the Colorado potato beetle")
    assert doc.links[:3] == ("84994427", "88379497", "84923201") and len(doc.links) == 17  # bib_entries' links


def test_the_datasets_s2orc_records_take_title_abstract_and_matched_references():
    results = outcomes(open_reader("s2", str(S2 / "s2orc" / "s2orc-sample.jsonl.gz")))
    assert results[0] == Skipped("no_abstract")  # an erratum: no abstract span
    second = results[1]
    assert second.id == "256868338" and second.title == "Solidarity to achieve stability *"
    assert second.text.startswith(second.title + "\n\nAgents may form coalitions.")
    assert len(second.links) == 40 and "1352843" in second.links  # bibentry spans' matched_paper_id, once each


def test_a_folder_of_s2orc_files_mixes_the_schemas(tmp_path):
    for name in ("s2orc_2020_metadata_excerpt.jsonl", "s2orc_2019_example_paper.jsonl"):
        (tmp_path / name).write_bytes((S2 / name).read_bytes())
    (tmp_path / "s2orc.jsonl.gz").write_bytes((S2 / "s2orc" / "s2orc-sample.jsonl.gz").read_bytes())
    assert counted(outcomes(open_reader("s2", str(tmp_path)))) == {"document": 43, "no_abstract": 115}


def test_hostile_records_cost_only_themselves(tmp_path):
    path = tmp_path / "s2orc.jsonl"
    good = (S2 / "s2orc_2019_example_paper.jsonl").read_text().strip()
    lines = [good, "{broken", '{"something": "else"}', '{"paper_id": "1", "abstract": 5}',
             '{"corpusid": 2, "content": {"text": "abc", "annotations": {"abstract": "[{\\"start\\": 0, \\"end\\": 99}]"}}}',
             '{"paper_id": "3", "title": "T", "abstract": "A", "outbound_citations": "4"}', good]
    path.write_text("\n".join(lines) + "\n")
    results = outcomes(open_reader("s2", str(path)))
    assert [e.reason for e in bad(results)] == ["malformed_json", "unknown_schema", "wrong_type", "bad_span",
                                                "wrong_type"]
    assert results[0] == results[-1] and isinstance(results[0], Document)
    too_long = outcomes(small_reader("s2", path, limit=1000))
    assert [e.reason for e in bad(too_long)][0] == "record_too_large"


def test_a_release_with_unreadable_citations_reads_the_rest(tmp_path):
    papers = [{"corpusid": 1, "title": "One"}, {"corpusid": 2, "title": "Two"}]
    abstracts = [{"corpusid": 1, "abstract": "First."}, {"corpusid": 2, "abstract": "Second."}]
    root = write_release(tmp_path / "r", papers, abstracts, [{"citingcorpusid": 1, "citedcorpusid": 2}])
    with gzip.open(root / "citations" / "part-1.jsonl.gz", "wt") as f:
        f.write('{"citingcorpusid": 2, "citedcorpusid": 1}\nnot json\n{"citedcorpusid": 1}\n')
    results = outcomes(open_reader("s2", str(root)))
    assert [e.reason for e in bad(results)] == ["malformed_json", "missing_field"]
    assert [(d.id, d.links) for d in results if isinstance(d, Document)] == [("1", ("2",)), ("2", ("1",))]
    with pytest.raises(ConfigError, match="--id-field does not apply to --format s2 \\(it does to jsonl, parquet\\)"):
        open_reader("s2", str(root), id_field="x")
