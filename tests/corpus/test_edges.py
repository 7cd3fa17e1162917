"""Links in an edge table (``--edges``), and zstd-compressed JSON lines, on real OpenAlex works
exported by openalexPro (tests/data/openalexpro/)."""

import gzip
import json

import pytest

from linkbert.corpus import Document, Skipped, open_reader
from linkbert.corpus.edges import KeyedSpool
from linkbert.errors import BadInput

from conftest import TEST_DATA
from hostile import bad, outcomes

WORKS = TEST_DATA / "openalexpro" / "cited_works.jsonl.zst"  # 41 works, other field names (abstract, referenced_works)
EDGES = TEST_DATA / "openalexpro" / "cited_citations.csv"  # the same works' referenced_works, one citation a row


def comparable(results) -> list:
    return [(e.path, e.location, e.reason) if isinstance(e, BadInput) else e for e in results]


def test_zstd_json_lines_with_renamed_fields():
    results = outcomes(open_reader("jsonl", str(WORKS), text_field="abstract", links_field="referenced_works"))
    docs = [r for r in results if isinstance(r, Document)]
    assert len(docs) == 30 and len(results) == 41
    # openalexPro leaves "abstract" out when OpenAlex has none: a required field missing, per line
    assert {(e.reason, e.path) for e in bad(results)} == {("missing_field", str(WORKS))}
    glove = next(d for d in docs if d.id == "https://openalex.org/W2250539671")
    assert glove.title == "Glove: Global Vectors for Word Representation" and len(glove.links) == 28


def test_links_from_an_edge_table_equal_the_links_field():
    fields = dict(text_field="abstract")
    by_field = outcomes(open_reader("jsonl", str(WORKS), links_field="referenced_works", **fields))
    by_table = outcomes(open_reader("jsonl", str(WORKS), edges=str(EDGES), **fields))
    assert comparable(by_table) == comparable(by_field)
    # every citation's source is a record of the corpus (11 of them bad: no abstract), so none is unclaimed
    assert Skipped("edge_from_unknown_document") not in by_table
    assert sum(len(d.links) for d in by_table if isinstance(d, Document)) == 905


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "csv.gz", "tsv"])
def test_every_table_kind_with_its_own_column_names(tmp_path, kind):
    rows = [line.split(",") for line in EDGES.read_text().splitlines()[1:]]
    path = tmp_path / f"edges.{kind}"
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"citing": [r[0] for r in rows], "cited": [r[1] for r in rows]}), path)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps({"citing": a, "cited": b, "weight": 1}) + "\n" for a, b in rows))
    else:
        sep = "\t" if kind == "tsv" else ","
        text = f"citing{sep}cited\n" + "".join(f"{a}{sep}{b}\n" for a, b in rows)
        path.write_bytes(gzip.compress(text.encode()) if kind.endswith(".gz") else text.encode())
    reader = open_reader("jsonl", str(WORKS), text_field="abstract", edges=str(path), edges_source="citing",
                         edges_target="cited")
    expected = outcomes(open_reader("jsonl", str(WORKS), text_field="abstract", edges=str(EDGES)))
    assert comparable(outcomes(reader)) == comparable(expected)


def test_a_parquet_corpus_with_an_edge_table(tmp_path):
    corpus = TEST_DATA / "openalexpro" / "citing_parquet"
    edges = tmp_path / "edges.jsonl"  # the three citing works cite the two key papers and others
    edges.write_text('{"src": "https://openalex.org/W4311043552", "tgt": "https://openalex.org/W3046863325"}\n'
                     '{"src": "https://openalex.org/W4311043552", "tgt": "https://openalex.org/W4387316167"}\n'
                     '{"src": "https://openalex.org/W1", "tgt": "https://openalex.org/W4311043552"}\n')
    results = outcomes(open_reader("parquet", str(corpus), text_field="abstract", edges=str(edges)))
    assert results[0].links == ("https://openalex.org/W3046863325", "https://openalex.org/W4387316167")
    assert results[1].links == () and results[-1] == Skipped("edge_from_unknown_document")


def test_edge_rows_that_cannot_be_read_cost_only_themselves(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "A."}\n{"id": "b", "text": "B."}\n')
    edges = tmp_path / "e.jsonl"
    edges.write_text('{"src": "a", "tgt": "b"}\nnot json\n{"src": "a"}\n{"src": ["a"], "tgt": "b"}\n'
                     '{"src": "ghost", "tgt": "a"}\n{"src": "b", "tgt": "nowhere"}\n[1, 2]\n')
    results = outcomes(open_reader("jsonl", str(corpus), edges=str(edges)))
    assert [(e.location, e.reason) for e in bad(results)] == [
        ("line 2", "malformed_json"), ("line 3", "missing_field"), ("line 4", "wrong_type"), ("line 7", "malformed_json")]
    docs = [r for r in results if isinstance(r, Document)]
    assert [(d.id, d.links) for d in docs] == [("a", ("b",)), ("b", ("nowhere",))]  # "nowhere": dangling in prepare
    assert results[-1] == Skipped("edge_from_unknown_document")  # ghost -> a


def test_a_table_without_the_named_columns_or_of_an_unknown_kind(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "A."}\n')
    (tmp_path / "e.csv").write_text("from,to\na,b\n")
    with pytest.raises(BadInput, match=r"no column 'src', 'tgt' in the header \(from, to\)") as info:
        outcomes(open_reader("jsonl", str(corpus), edges=str(tmp_path / "e.csv")))
    assert info.value.fatal
    (tmp_path / "e.xlsx").write_text("")
    from linkbert.errors import ConfigError

    with pytest.raises(ConfigError, match="expected a .parquet, .csv"):
        outcomes(open_reader("jsonl", str(corpus), edges=str(tmp_path / "e.xlsx")))


def test_the_spool_holds_rows_on_disk_and_counts_the_unclaimed(tmp_path):
    with KeyedSpool(str(tmp_path)) as spool:
        for i in range(25_000):
            spool.add(str(i % 100), str(i))
        spool.index()
        assert spool.get("7")[:3] == ["7", "107", "207"] and len(spool.get("7")) == 250
        assert spool.get("missing") == [] and spool.unclaimed() == 24_750
        folder = list(tmp_path.iterdir())
    assert folder and not any(p.exists() for p in folder)  # removed on exit


def test_the_spool_may_be_used_and_closed_from_another_thread(tmp_path):
    import threading

    spool = KeyedSpool(str(tmp_path))
    spool.add("a", "b")
    spool.index()
    got = []
    worker = threading.Thread(target=lambda: (got.append(spool.get("a")), spool.close()))
    worker.start()
    worker.join()
    assert got == [["b"]]


def test_a_vocabulary_is_trained_on_a_corpus_with_an_edge_table(tmp_path):
    """Before: tokenizers' trainer resumes the records generator from its own threads past its first
    batch of texts, and the edge table's SQLite join refused them (`linkbert prepare --edges ...
    --tokenizer train` stopped on any corpus over a few hundred documents)."""
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    n = 600
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document {i} says word{i % 50} and more"}) + "\n"
                              for i in range(n)))
    (tmp_path / "e.csv").write_text("src,tgt\n" + "".join(f"d{i},d{(i + 1) % n}\n" for i in range(n)))
    stats = prepare(PrepareConfig(format="jsonl", input=str(corpus), tokenizer="train", vocab_size=200,
                                  out=str(tmp_path / "out"), edges=str(tmp_path / "e.csv"), progress=False))
    assert (stats["documents"], stats["links_resolved"]) == (n, n)


def test_a_truncated_zst_file_keeps_what_came_before(tmp_path):
    data = WORKS.read_bytes()
    (tmp_path / "a.jsonl.zst").write_bytes(data[: len(data) // 2])
    (tmp_path / "b.jsonl").write_text('{"id": "b", "abstract": "Still read."}\n')
    results = outcomes(open_reader("jsonl", str(tmp_path), text_field="abstract"))
    (error,) = [e for e in bad(results) if e.fatal]
    assert (error.reason, error.path) == ("truncated_file", str(tmp_path / "a.jsonl.zst"))
    assert results[-1] == Document("b", "", "Still read.") and sum(isinstance(r, Document) for r in results) > 5
    (tmp_path / "c.jsonl.zst").write_bytes(b"this is not zstd\n")
    with pytest.raises(BadInput, match="not a valid zstd stream") as info:
        outcomes(open_reader("jsonl", str(tmp_path / "c.jsonl.zst")))
    assert info.value.reason == "corrupt_file"


def test_a_zstd_bomb_is_read_in_bounded_memory(tmp_path):
    import zstandard

    from hostile import peak_bytes, small_reader

    path = tmp_path / "bomb.jsonl.zst"  # 200 MB of one line in 6 kB
    path.write_bytes(zstandard.ZstdCompressor().compress(b'{"id": "x", "text": "' + b"a" * 200_000_000 + b'"}\n'
                                                         + b'{"id": "y", "text": "after"}\n'))
    results, peak = peak_bytes(lambda: outcomes(small_reader("jsonl", path, 10_000)))
    assert peak < 40_000_000
    assert [e.reason for e in bad(results)] == ["record_too_large"] and results[-1].id == "y"
