"""Step 1, read + tokenize (``linkbert.prepare.workers``): the same output whatever the number of
workers, a truncated input, a document the tokenizer cannot read, a long document in pieces."""

import gzip
import json

import pytest

from linkbert.corpus import Document
from linkbert.corpus.jsonl import JsonlReader
from linkbert.errors import BadInput

from conftest import TINY_TEXTS
from prepare.prepare_helpers import DOCS, STORE_FILES, run, write_corpus


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


def test_truncated_archive_keeps_what_came_before_with_skip_bad(tmp_path, tiny_tokenizer_dir):
    docs = [{"id": str(i), "title": "", "text": TINY_TEXTS[i % 5] + f" number {i}."} for i in range(3000)]
    data = gzip.compress("".join(json.dumps(d) + "\n" for d in docs).encode())
    (tmp_path / "corpus.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match="truncated|ends early"):
        run(tmp_path, tiny_tokenizer_dir, input=str(tmp_path / "corpus.jsonl.gz"))
    stats = run(tmp_path, tiny_tokenizer_dir, "kept", input=str(tmp_path / "corpus.jsonl.gz"), skip_bad=True)
    assert 0 < stats["documents"] < 3000
    assert stats["documents_skipped"] == {"truncated_file": 1}


# -- a document the tokenizer cannot read -------------------------------------------------------


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
    from linkbert.prepare import build

    def open_reader(fmt, path, *, max_record_bytes):
        reader = SurrogateReader(path)
        reader.max_record_bytes = max_record_bytes
        return reader

    monkeypatch.setattr(build, "open_reader", open_reader)


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
    from linkbert.prepare import workers

    real_init = workers._init_worker

    class Failing:
        def __init__(self, backend):
            self.backend = backend

        def encode_batch(self, texts, **kwargs):
            if any("capital" in text for text in texts):
                raise RuntimeError("tokenizer panicked\nsecond line")
            return self.backend.encode_batch(texts, **kwargs)

    def init(*args, **kwargs):
        real_init(*args, **kwargs)
        workers._worker["backend"] = Failing(workers._worker["backend"])

    monkeypatch.setattr(workers, "_init_worker", init)
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


# -- long documents -----------------------------------------------------------------------------


def test_a_long_document_in_pieces_gives_the_same_corpus(tmp_path, tiny_tokenizer_dir, monkeypatch):
    from linkbert.prepare import workers

    docs = [dict(d) for d in DOCS]
    docs[2]["text"] = "\n\n".join(" ".join(TINY_TEXTS[(i + j) % 5] for j in range(4)) for i in range(60))
    docs[2]["text"] += " Unknown ☃ words, é accents and 日本語 too." * 20
    write_corpus(tmp_path / "corpus.jsonl", docs)
    run(tmp_path, tiny_tokenizer_dir, "whole")
    monkeypatch.setattr(workers, "PIECE_CHARS", 100)
    monkeypatch.setattr(workers, "PIECE_GROUP", 3)
    run(tmp_path, tiny_tokenizer_dir, "pieces")
    for name in STORE_FILES[:-1]:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "pieces" / name).read_bytes(), name


# -- the worker side on its own: flat arguments, nothing else of the package ---------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_record_outcomes_takes_flat_arguments(tmp_path, tiny_tokenizer_dir, workers):
    from collections import Counter

    from linkbert.prepare.workers import record_outcomes
    from linkbert.tokenization import load_tokenizer, plain_backend

    write_corpus(tmp_path / "corpus.jsonl")
    tokenizer_json = plain_backend(load_tokenizer(str(tiny_tokenizer_dir))).to_str()
    outcomes = list(record_outcomes(JsonlReader(str(tmp_path / "corpus.jsonl")), tokenizer_json, budget=8,
                                    workers=workers, chunk_bytes=100, keep_text=True, skip_bad=False, counts=Counter(),
                                    warn=print))
    assert [outcome[0] for outcome in outcomes] == ["doc", "doc", "doc", "empty", "doc", "doc"]
    for outcome, doc in zip(outcomes, DOCS):
        if outcome[0] == "doc":
            _, doc_id, title, links, keys, tokens, lengths, text = outcome
            assert (doc_id, title, list(links), text) == (doc["id"], doc["title"], doc["links"], doc["text"])
            assert lengths.sum() == len(tokens) and 0 < lengths.max() <= 8


def test_the_workers_module_imports_nothing_else_of_the_package():
    """A spawned worker imports ``workers`` alone: no settings object, no build step."""
    import subprocess
    import sys

    code = ("import sys, linkbert.prepare.workers; "
            "print(sorted(m for m in sys.modules if m.startswith('linkbert.prepare')))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "['linkbert.prepare', 'linkbert.prepare.workers']"
