"""A prepared corpus folder: its parts, its segment budget, its tokenizer's pair layout."""

from __future__ import annotations

import json

import pytest

from linkbert.errors import ConfigError
from linkbert.prepare.build import prepare
from linkbert.prepare.settings import PrepareConfig
from linkbert.prepared import PreparedCorpus, graph_dir, is_prepared, stats_path, tokenizer_dir

from conftest import TINY_TEXTS


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_tokenizer_dir):
    root = tmp_path_factory.mktemp("prepared")
    docs = [{"id": str(i), "text": " ".join(TINY_TEXTS[(i + j) % 5] for j in range(3)), "links": [str((i + 1) % 8)]}
            for i in range(8)]
    (root / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    prepare(PrepareConfig(format="jsonl", input=str(root / "c.jsonl"), tokenizer=str(tiny_tokenizer_dir),
                          out=str(root / "out"), segment_budget=20, progress=False))
    return root / "out"


def test_the_folder_and_its_parts(folder):
    assert is_prepared(folder) and not is_prepared(folder / "graph")
    corpus = PreparedCorpus(folder)
    assert corpus.graph_dir == graph_dir(folder) and corpus.tokenizer_dir == tokenizer_dir(folder)
    assert corpus.stats["segment_budget"] == corpus.segment_budget == 20
    assert 0 < corpus.longest_segment <= 20
    assert corpus.graph().num_nodes == corpus.store.num_documents == 8
    assert len(corpus.tokenizer()) == corpus.store.vocab_size


def test_not_a_prepared_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a prepared corpus"):
        PreparedCorpus(tmp_path)


def test_an_older_folder_without_the_budget_uses_its_longest_segment(folder, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(folder, copy)
    stats = json.loads(stats_path(copy).read_text())
    del stats["segment_budget"]
    stats_path(copy).write_text(json.dumps(stats))
    corpus = PreparedCorpus(copy)
    assert corpus.segment_budget == corpus.longest_segment
