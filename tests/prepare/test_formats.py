"""``linkbert prepare`` on corpora as people hold them: OpenAlex, Semantic Scholar, parquet, zstd
JSON lines and edge tables, each on a real excerpt (tests/data/README.md)."""

import gzip
import json

import pytest

from linkbert.cli import main as cli_main
from linkbert.errors import ConfigError
from linkbert.graph import DocGraph
from linkbert.prepare.build import prepare
from linkbert.prepare.settings import PrepareConfig
from linkbert.store import SegmentStore

from conftest import TEST_DATA


def run(tmp_path, tokenizer_dir, **settings):
    config = dict(tokenizer=str(tokenizer_dir), out=str(tmp_path / "out"), progress=False, segment_budget=30)
    config.update(settings)
    stats = prepare(PrepareConfig(**config))
    DocGraph.load(tmp_path / "out" / "graph").validate()
    return stats


def links(stats) -> tuple:
    return stats["links_raw"], stats["links_resolved"], stats["links_dropped"]


def test_openalex_api_pages(tmp_path, tiny_tokenizer_dir):
    stats = run(tmp_path, tiny_tokenizer_dir, format="openalex", input=str(TEST_DATA / "openalex" / "api"))
    assert stats["documents"] == 5 and stats["documents_skipped"] == {}
    assert links(stats) == (188, 3, {"dangling": 185})  # three papers citing the key papers: URL ids resolved
    names = SegmentStore(tmp_path / "out").document_names()
    assert [n["id"] for n in names] == ["W4311043552", "W4293919086", "W4387316167", "W3046863325", "W3045921891"]


def test_openalex_snapshot_through_the_cli(tmp_path, tiny_tokenizer_dir, capsys):
    code = cli_main(["prepare", "--format", "openalex", "--input", str(TEST_DATA / "openalex" / "snapshot"),
                     "--tokenizer", str(tiny_tokenizer_dir), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 0 and "skipped documents: no_abstract 11" in capsys.readouterr().out
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["documents"] == 30 and stats["documents_skipped"] == {"no_abstract": 11}
    assert links(stats) == (905, 24, {"dangling": 881})


def test_s2orc_records(tmp_path, tiny_tokenizer_dir):
    stats = run(tmp_path, tiny_tokenizer_dir, format="s2", input=str(TEST_DATA / "s2" / "s2orc_2020_metadata_excerpt.jsonl"))
    assert stats["documents"] == 40 and stats["documents_skipped"] == {"no_abstract": 114}
    # a random sample of S2ORC: its few citations among its own papers go to papers without abstracts
    assert links(stats) == (113, 0, {"dangling": 110, "self": 3})


def test_s2_release_joined_on_corpus_id(tmp_path, tiny_tokenizer_dir):
    # the official sample files share no corpus id (tests/corpus/test_s2.py), so this release is
    # synthetic: real paper and abstract records of the samples, re-keyed to join, and citations
    papers = [json.loads(line) for line in gzip.open(TEST_DATA / "s2" / "release" / "papers" / "papers-sample.jsonl.gz")]
    abstracts = [json.loads(line) for line in
                 gzip.open(TEST_DATA / "s2" / "release" / "abstracts" / "abstracts-sample.jsonl.gz")]
    papers = papers[:4]
    for paper, abstract in zip(papers, abstracts[:3]):
        abstract["corpusid"] = paper["corpusid"]
    ids = [str(p["corpusid"]) for p in papers]
    citations = [{"citingcorpusid": ids[0], "citedcorpusid": ids[1]}, {"citingcorpusid": ids[1], "citedcorpusid": ids[2]},
                 {"citingcorpusid": ids[2], "citedcorpusid": ids[3]}, {"citingcorpusid": ids[2], "citedcorpusid": "42"},
                 {"citingcorpusid": "7", "citedcorpusid": ids[0]}]
    root = tmp_path / "release"
    for name, rows in (("papers", papers), ("abstracts", abstracts[:3]), ("citations", citations)):
        (root / name).mkdir(parents=True)
        (root / name / "shard-0.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    stats = run(tmp_path, tiny_tokenizer_dir, format="s2", input=str(root))
    assert stats["documents"] == 3
    assert stats["documents_skipped"] == {"no_abstract": 1, "citation_from_unknown_paper": 1}
    assert links(stats) == (4, 2, {"dangling": 2})  # 0->1, 1->2 resolve; 2->3 (no abstract), 2->42 do not


def test_parquet_partitions(tmp_path, tiny_tokenizer_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shutil

    from linkbert.corpus.openalex import abstract_text

    corpus = tmp_path / "corpus"
    shutil.copytree(TEST_DATA / "openalexpro" / "citing_parquet", corpus)  # real: page=1/, the citing papers
    # a second partition, written here from the key papers' API page (id, title, abstract, references)
    works = json.loads((TEST_DATA / "openalex" / "api" / "keypaper_results_page_1.json").read_text())["results"]
    (corpus / "page=2").mkdir()
    pq.write_table(pa.table({"id": [w["id"] for w in works], "title": [w["title"] for w in works],
                             "abstract": [abstract_text(w["abstract_inverted_index"]) for w in works],
                             "referenced_works": [w["referenced_works"] for w in works]}), corpus / "page=2" / "k.parquet")
    stats = run(tmp_path, tiny_tokenizer_dir, format="parquet", input=str(corpus), text_field="abstract",
                links_field="referenced_works")
    assert stats["documents"] == 5 and stats["documents_skipped"] == {}
    assert links(stats) == (188, 3, {"dangling": 185})  # as from the API pages: the same works


def test_zstd_json_lines_with_an_edge_table(tmp_path, tiny_tokenizer_dir):
    stats = run(tmp_path, tiny_tokenizer_dir, format="jsonl", input=str(TEST_DATA / "openalexpro" / "cited_works.jsonl.zst"),
                text_field="abstract", edges=str(TEST_DATA / "openalexpro" / "cited_citations.csv"), skip_bad=True)
    # the same works as the snapshot part file, exported by openalexPro (no "abstract" where OpenAlex has none)
    assert stats["documents"] == 30 and stats["documents_skipped"] == {"missing_field": 11}
    assert links(stats) == (905, 24, {"dangling": 881})


def test_settings_that_do_not_fit_the_format(tmp_path, tiny_tokenizer_dir):
    with pytest.raises(ConfigError, match="--id-field does not apply to --format openalex"):
        run(tmp_path, tiny_tokenizer_dir, format="openalex", input=str(TEST_DATA / "openalex" / "api"), id_field="doi")
    with pytest.raises(ConfigError, match="give --edges FILE"):
        run(tmp_path, tiny_tokenizer_dir, format="jsonl", input=str(TEST_DATA / "openalexpro" / "cited_works.jsonl.zst"),
            edges_target="to")


@pytest.mark.slow
@pytest.mark.parametrize("settings", [
    dict(format="openalex", input=str(TEST_DATA / "openalex" / "snapshot")),
    dict(format="jsonl", input=str(TEST_DATA / "openalexpro" / "cited_works.jsonl.zst"), text_field="abstract",
         edges=str(TEST_DATA / "openalexpro" / "cited_citations.csv"), skip_bad=True),
    dict(format="s2", input=str(TEST_DATA / "s2" / "s2orc_2020_metadata_excerpt.jsonl")),
    dict(format="parquet", input=str(TEST_DATA / "openalexpro" / "citing_parquet"), text_field="abstract",
         links_field="referenced_works"),
], ids=["openalex", "jsonl-zst-edges", "s2", "parquet"])
def test_worker_processes_give_the_same_corpus(tmp_path, tiny_tokenizer_dir, settings):
    one = run(tmp_path / "one", tiny_tokenizer_dir, **settings)
    two = run(tmp_path / "two", tiny_tokenizer_dir, workers=2, **settings)
    assert {k: v for k, v in one.items() if k not in ("seconds", "workers")} == \
           {k: v for k, v in two.items() if k not in ("seconds", "workers")}
