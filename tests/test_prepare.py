import gzip
import json

import numpy as np
import pytest

from linkbert.cli import main as cli_main
from linkbert.corpus import Document
from linkbert.corpus.jsonl import JsonlReader
from linkbert.errors import BadInput, ConfigError
from linkbert.graph import DocGraph
from linkbert.prepare import PrepareConfig, prepare
from linkbert.prepared import PreparedCorpus, compute_fingerprint
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


# -- the output folder: built beside, moved in when complete; never overwritten unasked ----------

STORE_FILES = ["tokens.bin", "segments.bin", "documents.bin", "documents.jsonl", "store.json",
               "graph/indptr.npy", "graph/indices.npy", "graph/in_degree.npy", "stats.json"]


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if ".building-" in p.name or ".old-" in p.name)


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


def test_a_full_disk_names_the_output_folder(tmp_path, tiny_tokenizer_dir, monkeypatch, capsys):
    import errno

    from linkbert import store

    def full(self, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    write_corpus(tmp_path / "corpus.jsonl")
    monkeypatch.setattr(store.SegmentStoreWriter, "add", full)
    assert cli_main(prepare_argv(tmp_path, tiny_tokenizer_dir)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'out'}: No space left on device" in err
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


# -- identity: the fingerprint -----------------------------------------------------------------


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


# -- a user's mistakes: one line, exit status 2 ---------------------------------------------------


def prepare_argv(tmp_path, tokenizer_dir, *extra):
    return ["prepare", "--format", "jsonl", "--input", str(tmp_path / "corpus.jsonl"), "--tokenizer",
            str(tokenizer_dir), "--out", str(tmp_path / "out"), "--no-progress", *extra]


@pytest.mark.parametrize("mistake, expected", [
    ("missing tokenizer", "tokenizer folder {tmp}/nowhere does not exist"),
    ("tokenizer file", "tokenizer {tok}/tokenizer.json is a file"),
    ("segment budget 0", "segment_budget must be at least 1 (got 0)"),
    ("vocab size 0", "vocab_size must be at least 16 (got 0)"),
    ("workers 0", "workers must be at least 1 (got 0)"),
    ("max record bytes 0", "max_record_bytes must be at least 1 (got 0)"),
    ("out is a file", "{tmp}/out exists and is not a folder"),
    ("out not empty", "{tmp}/out is not empty: choose a new folder, or give --overwrite"),
    ("read-only folder", "{tmp}: Permission denied: cannot build the output folder {tmp}/out here"),
    ("no documents", "corpus.jsonl: 0 documents kept, at least 2 needed"),
    ("one document", "corpus.jsonl: 1 document kept, at least 2 needed"),
])
def test_cli_mistakes_are_one_line(tmp_path, tiny_tokenizer_dir, capsys, monkeypatch, mistake, expected):
    import os

    write_corpus(tmp_path / "corpus.jsonl")
    argv = prepare_argv(tmp_path, tiny_tokenizer_dir)
    tokenizer_at = argv.index("--tokenizer") + 1
    if mistake == "missing tokenizer":
        argv[tokenizer_at] = str(tmp_path / "nowhere")
    elif mistake == "tokenizer file":
        argv[tokenizer_at] = str(tiny_tokenizer_dir / "tokenizer.json")
    elif mistake == "segment budget 0":
        argv += ["--segment-budget", "0"]
    elif mistake == "vocab size 0":
        argv += ["--tokenizer", "train", "--vocab-size", "0"]
    elif mistake == "workers 0":
        argv += ["--workers", "0"]
    elif mistake == "max record bytes 0":
        argv += ["--max-record-bytes", "0"]
    elif mistake == "out is a file":
        (tmp_path / "out").write_text("mine")
    elif mistake == "out not empty":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "mine.txt").write_text("mine")
    elif mistake == "read-only folder":
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path) == str(tmp_path)
                            else real_access(path, mode, **kw))
    elif mistake == "no documents":
        (tmp_path / "corpus.jsonl").write_text("")
    elif mistake == "one document":
        write_corpus(tmp_path / "corpus.jsonl", DOCS[:1])
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linkbert prepare: error: "), err
    assert expected.format(tmp=tmp_path, tok=tiny_tokenizer_dir) in err
    if mistake == "out is a file":
        assert (tmp_path / "out").read_text() == "mine"
    if mistake == "out not empty":
        assert snapshot(tmp_path / "out") == {"mine.txt": b"mine"}
    assert leftovers(tmp_path) == []


def test_a_read_only_folder_is_reported_before_any_work(tmp_path, tiny_tokenizer_dir, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root may write to a read-only folder")
    write_corpus(tmp_path / "corpus.jsonl")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        argv = prepare_argv(tmp_path, tiny_tokenizer_dir)
        argv[argv.index("--out") + 1] = str(locked / "out")
        assert cli_main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{locked}: Permission denied" in err
    finally:
        locked.chmod(0o755)


# -- empty results: an error, the previous corpus untouched; no links: a warning -----------------


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


def test_an_html_file_given_as_a_wikipedia_dump(tmp_path, tiny_tokenizer_dir, capsys):
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><head><title>T</title></head><body><p>Hello. World.</p></body></html>")
    argv = prepare_argv(tmp_path, tiny_tokenizer_dir)
    argv[argv.index("--format") + 1] = "wikipedia-xml"
    argv[argv.index("--input") + 1] = str(page)
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(page) in err, err
    assert not (tmp_path / "out").exists()


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


# -- a document the tokenizer cannot read -----------------------------------------------------------


MARK = "<SURROGATE>"


class SurrogateReader(JsonlReader):
    """JSONL whose ``<SURROGATE>`` marks become lone surrogates after parsing: a reader that lets
    one through (the JSONL reader itself refuses them), to test what stands behind it."""

    def parse(self, record):
        parsed = super().parse(record)
        if not isinstance(parsed, Document):
            return parsed

        def put(value):
            return value.replace(MARK, "\ud800")

        return Document(put(parsed.id), put(parsed.title), put(parsed.text), tuple(put(t) for t in parsed.links))


@pytest.fixture
def surrogate_reader(monkeypatch):
    import linkbert.prepare as prepare_module

    def open_reader(fmt, path, *, max_record_bytes):
        reader = SurrogateReader(path)
        reader.max_record_bytes = max_record_bytes
        return reader

    monkeypatch.setattr(prepare_module, "open_reader", open_reader)


def surrogate_corpus(tmp_path, field="text"):
    docs = [dict(d) for d in DOCS]
    bad = {"id": "bad", "title": "Bad", "text": "Fine text. ", "links": ["paris"]}
    bad[field] = (bad[field] + f"broken {MARK} here.") if field != "links" else [MARK]
    docs.insert(2, bad)
    write_corpus(tmp_path / "corpus.jsonl", docs)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_lone_surrogate_costs_only_its_document(tmp_path, tiny_tokenizer_dir, surrogate_reader, workers):
    surrogate_corpus(tmp_path)
    with pytest.raises(BadInput, match=r"corpus.jsonl, document 'bad': its text holds a lone surrogate \(U\+D800, "
                                       r"at character 18\)") as caught:
        run(tmp_path, tiny_tokenizer_dir, workers=workers)
    assert caught.value.reason == "invalid_text"
    stats = run(tmp_path, tiny_tokenizer_dir, "skipping", skip_bad=True, workers=workers)
    assert stats["documents"] == 4 and stats["documents_skipped"] == {"duplicate_id": 1, "empty": 1, "invalid_text": 1}
    write_corpus(tmp_path / "corpus.jsonl")
    run(tmp_path, tiny_tokenizer_dir, "clean")
    for name in ("tokens.bin", "segments.bin", "documents.bin", "documents.jsonl"):
        assert (tmp_path / "skipping" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name


def test_a_tokenizer_failure_costs_only_its_document(tmp_path, tiny_tokenizer_dir, monkeypatch):
    """Whatever the tokenizer fails on: the batch is encoded again one by one."""
    from linkbert import prepare_workers

    real_init = prepare_workers._init_worker

    class Failing:
        def __init__(self, backend):
            self.backend = backend

        def encode_batch(self, texts, **kwargs):
            if any("capital" in text for text in texts):
                raise RuntimeError("tokenizer panicked\nsecond line")
            return self.backend.encode_batch(texts, **kwargs)

    def init(*args, **kwargs):
        real_init(*args, **kwargs)
        prepare_workers._worker["backend"] = Failing(prepare_workers._worker["backend"])

    monkeypatch.setattr(prepare_workers, "_init_worker", init)
    write_corpus(tmp_path / "corpus.jsonl")
    with pytest.raises(BadInput, match=r"document 'paris': the tokenizer cannot read its text \(tokenizer panicked\)$"):
        run(tmp_path, tiny_tokenizer_dir)
    stats = run(tmp_path, tiny_tokenizer_dir, "skipping", skip_bad=True)
    # paris and france are lost; the second "paris" is no longer a duplicate
    assert stats["documents"] == 3 and stats["documents_skipped"] == {"empty": 1, "invalid_text": 2}


@pytest.mark.parametrize("field", ["id", "title", "links"])
def test_a_lone_surrogate_in_other_fields(tmp_path, tiny_tokenizer_dir, surrogate_reader, field):
    surrogate_corpus(tmp_path, field)
    with pytest.raises(BadInput, match=f"its {field} holds a lone surrogate"):
        run(tmp_path, tiny_tokenizer_dir)
    stats = run(tmp_path, tiny_tokenizer_dir, "skipping", skip_bad=True)
    assert stats["documents"] == 4 and stats["documents_skipped"]["invalid_text"] == 1


def test_a_lone_surrogate_with_a_trained_vocabulary(tmp_path, surrogate_reader):
    surrogate_corpus(tmp_path)
    stats = run(tmp_path, "train", vocab_size=120, skip_bad=True)
    assert stats["documents"] == 4 and stats["documents_skipped"]["invalid_text"] == 1


def test_the_jsonl_reader_refuses_a_lone_surrogate_itself(tmp_path, tiny_tokenizer_dir):
    surrogate_corpus(tmp_path)
    text = (tmp_path / "corpus.jsonl").read_text().replace(MARK, "\\ud800")
    (tmp_path / "corpus.jsonl").write_text(text)
    stats = run(tmp_path, tiny_tokenizer_dir, skip_bad=True)
    assert stats["documents"] == 4 and sum(stats["documents_skipped"].values()) == 3


# -- long documents, trained vocabularies, settings ------------------------------------------------


def test_a_long_document_in_pieces_gives_the_same_corpus(tmp_path, tiny_tokenizer_dir, monkeypatch):
    from linkbert import prepare_workers

    docs = [dict(d) for d in DOCS]
    docs[2]["text"] = "\n\n".join(" ".join(TINY_TEXTS[(i + j) % 5] for j in range(4)) for i in range(60))
    docs[2]["text"] += " Unknown ☃ words, é accents and 日本語 too." * 20
    write_corpus(tmp_path / "corpus.jsonl", docs)
    run(tmp_path, tiny_tokenizer_dir, "whole")
    monkeypatch.setattr(prepare_workers, "PIECE_CHARS", 100)
    monkeypatch.setattr(prepare_workers, "PIECE_GROUP", 3)
    run(tmp_path, tiny_tokenizer_dir, "pieces")
    for name in STORE_FILES[:-1]:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "pieces" / name).read_bytes(), name


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
