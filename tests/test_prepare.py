import gzip
import json

import numpy as np
import pytest

from linkbert.cli import main as cli_main
from linkbert.graph import DocGraph
from linkbert.prepare import PrepareConfig, prepare
from linkbert.store import SegmentStore, token_dtype
from linkbert.tokenization import load_tokenizer, plain_backend

from conftest import TINY_TEXTS

DOCS = [
    {"id": "paris", "title": "Paris", "text": TINY_TEXTS[1] + "\n\n" + TINY_TEXTS[0],
     "links": ["france", "France", "paris", "nowhere", "empty"]},          # id, title (duplicate), self, dangling, to empty
    {"id": "france", "title": "France", "text": TINY_TEXTS[1], "links": ["Paris", "Graphs"]},
    {"id": "graphs", "title": "Graphs", "text": " ".join(TINY_TEXTS[2:] * 3), "links": ["Language"]},
    {"id": "empty", "title": "Empty", "text": "   ", "links": ["paris"]},  # skipped: no tokens
    {"id": "paris", "title": "Paris again", "text": "A duplicate id.", "links": []},  # skipped: duplicate id
    {"id": "language", "title": "Language", "text": TINY_TEXTS[3], "links": []},
]


def write_corpus(path, docs=DOCS):
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def run(tmp_path, tokenizer_dir, name="out", **overrides):
    config = dict(format="jsonl", input=str(tmp_path / "corpus.jsonl"), tokenizer=str(tokenizer_dir),
                  out=str(tmp_path / name), progress=False, segment_budget=16)
    config.update(overrides)
    return prepare(PrepareConfig(**config))


def test_counts_graph_and_store(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    stats = run(tmp_path, tiny_tokenizer_dir)
    assert stats["documents"] == 4
    assert stats["documents_skipped"] == {"duplicate_id": 1, "empty": 1}
    assert stats["links_raw"] == 8  # links of kept documents only
    assert stats["links_resolved"] == 4  # paris->france, france->paris, france->graphs, graphs->language
    assert stats["links_dangling"] == 1
    assert stats["links_dropped"] == {"dangling": 1, "to_skipped_document": 1, "self": 1, "duplicate": 1}
    assert stats["docs_without_outlinks"] == 1
    assert stats["segments"] > 0 and stats["tokens"] > 0
    assert stats["seconds"] >= 0  # rounded to 0.01 s: a run of four documents can show 0.0
    assert json.loads((tmp_path / "out" / "stats.json").read_text()) == stats

    graph = DocGraph.load(tmp_path / "out" / "graph")
    graph.validate()
    assert [graph.neighbors(i).tolist() for i in range(4)] == [[1], [0, 2], [3], []]
    store = SegmentStore(tmp_path / "out")
    assert [d["id"] for d in store.document_names()] == ["paris", "france", "graphs", "language"]
    assert store.dtype == token_dtype(stats["vocab_size"]) and store.num_segments == stats["segments"]


def test_segments_give_back_each_document_exactly(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    run(tmp_path, tiny_tokenizer_dir)
    store = SegmentStore(tmp_path / "out")
    backend = plain_backend(load_tokenizer(str(tmp_path / "out" / "tokenizer")))
    kept = [d for d in DOCS if d["text"].strip()][:2] + [DOCS[2], DOCS[5]]
    for index, doc in enumerate(kept):
        expected = backend.encode(doc["text"], add_special_tokens=False).ids
        segments = [store.segment(s) for s in store.document_segments(index)]
        assert np.concatenate(segments).tolist() == expected
        assert all(0 < len(s) <= 16 for s in segments)
        decoded = " ".join(backend.decode(s.tolist()) for s in segments)
        assert decoded == backend.decode(expected)
    # a sentence-aware cut: the first segment of "paris" is its first sentence
    assert backend.decode(store.segment(0).tolist()) == "paris is the capital of france."


def test_output_is_byte_identical_whatever_the_number_of_workers(tmp_path, tiny_tokenizer_dir):
    docs = [{"id": str(i), "title": f"Doc {i}", "text": " ".join(TINY_TEXTS[i % 5:] + TINY_TEXTS[:i % 3]) * (1 + i % 4),
             "links": [str((i * 7) % 60), f"Doc {(i + 1) % 60}", "missing"]} for i in range(60)]
    write_corpus(tmp_path / "corpus.jsonl", docs)
    run(tmp_path, tiny_tokenizer_dir, "one", workers=1, chunk_bytes=2000)
    run(tmp_path, tiny_tokenizer_dir, "two", workers=2, chunk_bytes=2000)
    files = ["tokens.bin", "segments.bin", "documents.bin", "documents.jsonl", "store.json",
             "graph/indptr.npy", "graph/indices.npy", "graph/in_degree.npy"]
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    one = json.loads((tmp_path / "one" / "stats.json").read_text())
    two = json.loads((tmp_path / "two" / "stats.json").read_text())
    for stats in (one, two):
        stats.pop("seconds"), stats.pop("workers")
    assert one == two


def test_bad_line_stops_or_is_counted(tmp_path, tiny_tokenizer_dir):
    path = write_corpus(tmp_path / "corpus.jsonl")
    path.write_text(path.read_text() + '{"id": "broken", "text": \n{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(Exception, match=r"corpus.jsonl, line 7: not valid JSON"):
        run(tmp_path, tiny_tokenizer_dir)
    stats = run(tmp_path, tiny_tokenizer_dir, "skipping", skip_bad=True)
    assert stats["documents"] == 4
    assert stats["documents_skipped"] == {"duplicate_id": 1, "empty": 1, "malformed_json": 1, "missing_field": 1}


def test_truncated_archive_keeps_what_came_before_with_skip_bad(tmp_path, tiny_tokenizer_dir):
    docs = [{"id": str(i), "title": "", "text": TINY_TEXTS[i % 5] + f" number {i}."} for i in range(3000)]
    data = gzip.compress("".join(json.dumps(d) + "\n" for d in docs).encode())
    (tmp_path / "corpus.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match="truncated|ends early"):
        run(tmp_path, tiny_tokenizer_dir, input=str(tmp_path / "corpus.jsonl.gz"))
    stats = run(tmp_path, tiny_tokenizer_dir, "kept", input=str(tmp_path / "corpus.jsonl.gz"), skip_bad=True)
    assert 0 < stats["documents"] < 3000
    assert stats["documents_skipped"] == {"truncated_file": 1}


def test_cli_reports_bad_input_clearly(tmp_path, tiny_tokenizer_dir, capsys):
    (tmp_path / "corpus.jsonl").write_bytes(b'{"id": "a", "text": "caf\xe9"}\n')
    argv = ["prepare", "--format", "jsonl", "--input", str(tmp_path / "corpus.jsonl"),
            "--tokenizer", str(tiny_tokenizer_dir), "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli_main(argv) == 2
    assert "corpus.jsonl, line 1: invalid UTF-8" in capsys.readouterr().err
    argv[4] = str(tmp_path / "missing.jsonl")
    assert cli_main(argv + ["--skip-bad"]) == 2
    assert "missing.jsonl: input does not exist" in capsys.readouterr().err


def test_cli_prints_a_summary(tmp_path, tiny_tokenizer_dir, capsys):
    write_corpus(tmp_path / "corpus.jsonl")
    argv = ["prepare", "--format", "jsonl", "--input", str(tmp_path / "corpus.jsonl"),
            "--tokenizer", str(tiny_tokenizer_dir), "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "prepared 4 documents" in out and "duplicate_id 1" in out


def test_trained_vocabulary(tmp_path):
    write_corpus(tmp_path / "corpus.jsonl")
    stats = run(tmp_path, "train", vocab_size=120)
    tokenizer = load_tokenizer(str(tmp_path / "out" / "tokenizer"))
    assert stats["vocab_size"] == len(tokenizer) <= 120 and stats["token_dtype"] == "uint8"
    assert "".join(tokenizer.tokenize("paris")).replace("##", "") == "paris"  # no [UNK]: letters are in the vocabulary


@pytest.mark.parametrize("builder", ["title-mention", "tfidf"])
def test_link_builders_replace_the_corpus_links(tmp_path, tiny_tokenizer_dir, builder):
    docs = [
        {"id": "a", "title": "Paris", "text": "Paris is the capital of France. It lies on the Seine.", "links": []},
        {"id": "b", "title": "France", "text": "France is a country in Europe. Its capital is Paris.", "links": []},
        {"id": "c", "title": "Proteins", "text": "Proteins fold into structures. Genes encode proteins.", "links": []},
        {"id": "d", "title": "Genes", "text": "Genes encode proteins in cells. Cells contain genes.", "links": []},
    ]
    write_corpus(tmp_path / "corpus.jsonl", docs)
    stats = run(tmp_path, tiny_tokenizer_dir, link_builder=builder, tfidf_k=1)
    graph = DocGraph.load(tmp_path / "out" / "graph")
    graph.validate()
    rows = [graph.neighbors(i).tolist() for i in range(4)]
    # title mention: each text names the other title of its topic; tfidf: the most similar
    # document is the other one of its topic
    assert rows == [[1], [0], [3], [2]]
    assert stats["link_builder"] == builder and stats["links_resolved"] == 4
