"""What the tests of ``linkbert prepare`` share: a small linked corpus with every kind of link, and
running ``prepare`` on it."""

import json

from linkbert.prepare.build import prepare
from linkbert.prepare.settings import PrepareConfig

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


STORE_FILES = ["tokens.bin", "segments.bin", "documents.bin", "documents.jsonl", "store.json",
               "graph/indptr.npy", "graph/indices.npy", "graph/in_degree.npy", "stats.json"]


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if ".building-" in p.name or ".old-" in p.name)


def prepare_argv(tmp_path, tokenizer_dir, *extra):
    return ["prepare", "--format", "jsonl", "--input", str(tmp_path / "corpus.jsonl"), "--tokenizer",
            str(tokenizer_dir), "--out", str(tmp_path / "out"), "--no-progress", *extra]
