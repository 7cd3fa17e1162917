"""The steps of ``linkbert prepare`` (``linkbert.prepare.build``): counts, graph and store; links
built from the texts; the output folder; the fingerprint; empty results; settings."""

import json

import numpy as np
import pytest

from linkbert.errors import BadInput, ConfigError
from linkbert.graph import DocGraph
from linkbert.prepared import PreparedCorpus, compute_fingerprint
from linkbert.store import SegmentStore, token_dtype
from linkbert.tokenization import load_tokenizer, plain_backend

from conftest import TINY_TEXTS
from prepare.prepare_helpers import DOCS, STORE_FILES, leftovers, run, snapshot, write_corpus


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


def test_bad_line_stops_or_is_counted(tmp_path, tiny_tokenizer_dir):
    path = write_corpus(tmp_path / "corpus.jsonl")
    path.write_text(path.read_text() + '{"id": "broken", "text": \n{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(Exception, match=r"corpus.jsonl, line 7: not valid JSON"):
        run(tmp_path, tiny_tokenizer_dir)
    stats = run(tmp_path, tiny_tokenizer_dir, "skipping", skip_bad=True)
    assert stats["documents"] == 4
    assert stats["documents_skipped"] == {"duplicate_id": 1, "empty": 1, "malformed_json": 1, "missing_field": 1}


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


# -- the output folder: built beside, moved in when complete; never overwritten unasked ---------


def test_a_non_empty_out_is_refused_without_overwrite(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"out is not empty.*--overwrite"):
        run(tmp_path, tiny_tokenizer_dir)
    assert snapshot(tmp_path / "out") == {"notes.txt": b"mine"}
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_everything_stale_included(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    run(tmp_path, tiny_tokenizer_dir, "fresh")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.bin").write_bytes(b"old")
    (tmp_path / "out" / "graph").mkdir()
    (tmp_path / "out" / "graph" / "stale.npy").write_bytes(b"old")
    run(tmp_path, tiny_tokenizer_dir, overwrite=True)
    fresh, replaced = snapshot(tmp_path / "fresh"), snapshot(tmp_path / "out")
    assert set(replaced) == set(fresh)  # no stale file left
    for name in STORE_FILES[:-1]:
        assert replaced[name] == fresh[name], name
    assert leftovers(tmp_path) == []


def test_a_failed_prepare_leaves_the_previous_corpus_as_it_was(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    run(tmp_path, tiny_tokenizer_dir)
    before = snapshot(tmp_path / "out")
    (tmp_path / "corpus.jsonl").write_text((tmp_path / "corpus.jsonl").read_text() + "{broken\n")
    with pytest.raises(BadInput, match="line 7"):
        run(tmp_path, tiny_tokenizer_dir, overwrite=True)
    assert snapshot(tmp_path / "out") == before
    assert leftovers(tmp_path) == []


def test_an_out_that_is_a_file_or_inside_the_input_is_refused(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    (tmp_path / "out").write_text("a file")
    with pytest.raises(ConfigError, match="out exists and is not a folder"):
        run(tmp_path, tiny_tokenizer_dir)
    assert (tmp_path / "out").read_text() == "a file"
    folder = tmp_path / "site"
    folder.mkdir()
    write_corpus(folder / "corpus.jsonl")
    with pytest.raises(ConfigError, match="overlaps the input"):
        run(tmp_path, tiny_tokenizer_dir, input=str(folder), out=str(folder / "prepared"))
    assert sorted(p.name for p in folder.iterdir()) == ["corpus.jsonl"]


def test_an_out_holding_the_edge_table_is_refused_even_with_overwrite(tmp_path, tiny_tokenizer_dir):
    """Before: only the corpus was protected; replacing OUT deleted an --edges table inside it."""
    write_corpus(tmp_path / "corpus.jsonl")
    edges = tmp_path / "out" / "edges.csv"
    edges.parent.mkdir()
    edges.write_text("src,tgt\n0,1\n")
    with pytest.raises(ConfigError, match="overlaps the input"):
        run(tmp_path, tiny_tokenizer_dir, edges=str(edges), overwrite=True)
    assert edges.read_text() == "src,tgt\n0,1\n"


def test_an_empty_out_folder_is_used(tmp_path, tiny_tokenizer_dir):
    """The Python API's callers (quickstart, ablation) prepare into a new or emptied folder."""
    write_corpus(tmp_path / "corpus.jsonl")
    (tmp_path / "out").mkdir()
    assert run(tmp_path, tiny_tokenizer_dir)["documents"] == 4


def test_a_failed_rename_into_place_puts_the_previous_corpus_back(tmp_path, tiny_tokenizer_dir, monkeypatch):
    import errno
    import os

    write_corpus(tmp_path / "corpus.jsonl")
    run(tmp_path, tiny_tokenizer_dir)
    before = snapshot(tmp_path / "out")
    real_rename = os.rename

    def failing(src, dst):
        if ".building-" in str(src):  # the old folder went aside; the new one cannot come in
            raise OSError(errno.EACCES, "Permission denied", str(src), None, str(dst))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError) as failure:
        run(tmp_path, tiny_tokenizer_dir, overwrite=True)
    assert failure.value.errno == errno.EACCES and failure.value.filename == str(tmp_path / "out")
    assert snapshot(tmp_path / "out") == before and leftovers(tmp_path) == []


def test_a_write_error_inside_the_hidden_folder_names_the_output_folder(tmp_path, tiny_tokenizer_dir, monkeypatch):
    import errno

    def full(graph, folder):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "indices.npy"))

    write_corpus(tmp_path / "corpus.jsonl")
    monkeypatch.setattr(DocGraph, "save", full)
    with pytest.raises(OSError) as failure:
        run(tmp_path, tiny_tokenizer_dir)
    assert failure.value.filename == str(tmp_path / "out") and failure.value.errno == errno.ENOSPC
    assert failure.value.strerror == "No space left on device (writing graph/indices.npy)"
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


# -- identity: the fingerprint ------------------------------------------------------------------


def test_fingerprint_is_recorded_and_recomputed_the_same(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    stats = run(tmp_path, tiny_tokenizer_dir)
    out = tmp_path / "out"
    assert len(stats["fingerprint"]) == 64
    assert compute_fingerprint(out) == stats["fingerprint"] == PreparedCorpus(out).fingerprint
    # a folder prepared before prepare recorded it: computed from the files, the same
    stats.pop("fingerprint")
    (out / "stats.json").write_text(json.dumps(stats))
    assert PreparedCorpus(out).fingerprint == compute_fingerprint(out)
    (out / "stats.json").unlink()
    assert PreparedCorpus(out).fingerprint == compute_fingerprint(out)
    # another run on the same input: the same corpus
    assert run(tmp_path, tiny_tokenizer_dir, "again")["fingerprint"] == compute_fingerprint(out)


@pytest.mark.parametrize("change", ["token", "title", "graph", "vocabulary"])
def test_fingerprint_changes_with_the_data(tmp_path, tiny_tokenizer_dir, change):
    import shutil

    write_corpus(tmp_path / "corpus.jsonl")
    out = tmp_path / "out"
    before = run(tmp_path, tiny_tokenizer_dir)["fingerprint"]
    if change == "token":
        data = bytearray((out / "tokens.bin").read_bytes())
        data[5] ^= 1
        (out / "tokens.bin").write_bytes(bytes(data))
    elif change == "title":
        names = (out / "documents.jsonl").read_text().replace('"Paris"', '"Parisx"')
        (out / "documents.jsonl").write_text(names)
    elif change == "graph":
        shutil.rmtree(out / "graph")
    else:
        import tokenizers

        path = out / "tokenizer" / "tokenizer.json"
        backend = tokenizers.Tokenizer.from_file(str(path))
        backend.add_tokens(["zzzextra"])
        backend.save(str(path))
    assert compute_fingerprint(out) != before


def test_fingerprint_differs_for_other_settings(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    sixteen = run(tmp_path, tiny_tokenizer_dir, "a")["fingerprint"]
    assert run(tmp_path, tiny_tokenizer_dir, "b", segment_budget=8)["fingerprint"] != sixteen
    assert run(tmp_path, tiny_tokenizer_dir, "c", link_builder="tfidf")["fingerprint"] != sixteen


# -- empty results: an error, the previous corpus untouched; no links: a warning ----------------


def test_no_documents_kept_is_an_error_saying_what_was_read(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    run(tmp_path, tiny_tokenizer_dir)
    before = snapshot(tmp_path / "out")
    (tmp_path / "corpus.jsonl").write_text('{"id": 1\n{"text": "no id"}\n{"id": "e", "text": "  "}\n')
    with pytest.raises(BadInput, match=r"corpus.jsonl: 0 documents kept, at least 2 needed .*read 3 records; "
                                       r"skipped: empty 1, malformed_json 1, missing_field 1") as caught:
        run(tmp_path, tiny_tokenizer_dir, overwrite=True, skip_bad=True)
    assert caught.value.reason == "too_few_documents"
    assert snapshot(tmp_path / "out") == before and leftovers(tmp_path) == []


def test_an_empty_corpus_is_an_error_that_doubts_the_format(tmp_path, tiny_tokenizer_dir):
    (tmp_path / "corpus.jsonl").write_text("")
    with pytest.raises(BadInput, match=r"0 documents kept.*read 0 records; skipped: none; is it really a jsonl"):
        run(tmp_path, tiny_tokenizer_dir)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_a_trained_vocabulary_on_no_documents_is_the_same_error(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"id": "only", "text": "One document only."}\n')
    with pytest.raises(BadInput, match="1 document kept, at least 2 needed"):
        run(tmp_path, "train", vocab_size=100)


def test_a_corpus_without_links_warns(tmp_path, tiny_tokenizer_dir, capsys):
    docs = [{"id": str(i), "title": f"T{i}", "text": TINY_TEXTS[i]} for i in range(3)]
    write_corpus(tmp_path / "corpus.jsonl", docs)
    stats = run(tmp_path, tiny_tokenizer_dir)
    err = capsys.readouterr().err
    assert stats["links_resolved"] == 0 and len(stats["warnings"]) == 1
    assert "the corpus has no links" in stats["warnings"][0] and "--link-builder" in stats["warnings"][0]
    assert f"linkbert prepare: warning: {stats['warnings'][0]}\n" in err
    # dangling links only: the same warning, saying so
    docs[0]["links"] = ["nowhere"]
    write_corpus(tmp_path / "corpus.jsonl", docs)
    stats = run(tmp_path, tiny_tokenizer_dir, "dangling")
    assert "none of its 1 link targets resolved" in stats["warnings"][0]


def test_a_linked_corpus_or_a_link_builder_gives_no_warning(tmp_path, tiny_tokenizer_dir, capsys):
    write_corpus(tmp_path / "corpus.jsonl")
    assert run(tmp_path, tiny_tokenizer_dir)["warnings"] == []
    docs = [{"id": "a", "title": "Paris", "text": "Paris is in France. France has Paris."},
            {"id": "b", "title": "France", "text": "France is a country. Paris is its capital."}]
    write_corpus(tmp_path / "corpus.jsonl", docs)
    assert run(tmp_path, tiny_tokenizer_dir, "built", link_builder="title-mention")["warnings"] == []
    assert "warning" not in capsys.readouterr().err


# -- trained vocabularies, settings -------------------------------------------------------------


def test_trained_vocabulary_is_the_same_on_every_run(tmp_path):
    write_corpus(tmp_path / "corpus.jsonl")
    first = run(tmp_path, "train", "a", vocab_size=90)
    second = run(tmp_path, "train", "b", vocab_size=90)
    for name in ("tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json", "tokens.bin"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first["fingerprint"] == second["fingerprint"]


def test_max_record_bytes_reaches_the_reader_and_stats(tmp_path, tiny_tokenizer_dir):
    write_corpus(tmp_path / "corpus.jsonl")
    longest = max(len(line.encode()) for line in (tmp_path / "corpus.jsonl").read_text().splitlines())
    stats = run(tmp_path, tiny_tokenizer_dir, max_record_bytes=longest + 1)
    assert stats["max_record_bytes"] == longest + 1 and stats["documents"] == 4
    sizes = [len(line.encode()) for line in (tmp_path / "corpus.jsonl").read_text().splitlines()]
    third, second = sorted(sizes)[-3:-1]
    limit = (third + second) // 2  # the two longest lines (paris, graphs) are over it, by far
    first_over = next(i for i, size in enumerate(sizes) if size > limit) + 1
    with pytest.raises(BadInput, match=f"corpus.jsonl, line {first_over}: larger than the limit of {limit} bytes"):
        run(tmp_path, tiny_tokenizer_dir, "small", max_record_bytes=limit)
    stats = run(tmp_path, tiny_tokenizer_dir, "skipping", max_record_bytes=limit, skip_bad=True)
    assert stats["documents"] == 3 and stats["max_record_bytes"] == limit
    assert sum(stats["documents_skipped"].values()) - stats["documents_skipped"].get("empty", 0) == 2
