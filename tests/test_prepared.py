"""A prepared corpus folder: its parts, its segment budget, the max_length check, its pretraining data."""

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


def test_max_length_must_hold_two_segments_and_fit_the_positions(folder):
    corpus = PreparedCorpus(folder)
    corpus.check_max_length(43, max_positions=512)  # 2 x 20 + 3
    with pytest.raises(ConfigError, match="needs 43.*--segment-budget 19"):
        corpus.check_max_length(42)
    with pytest.raises(ConfigError, match="512 position embeddings"):
        corpus.check_max_length(1000, max_positions=512)


def test_an_older_folder_without_the_budget_uses_its_longest_segment(folder, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(folder, copy)
    stats = json.loads(stats_path(copy).read_text())
    del stats["segment_budget"]
    stats_path(copy).write_text(json.dumps(stats))
    corpus = PreparedCorpus(copy)
    assert corpus.segment_budget == corpus.longest_segment


def test_pretraining_data(folder):
    corpus = PreparedCorpus(folder)
    train, heldout, collator = corpus.pretraining_data(max_length=48, seed=3, heldout_fraction=0.25)
    assert heldout is not None and len(train) + len(heldout) == corpus.store.num_segments
    batch = collator([train.pair(0, i) for i in range(4)])
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"].shape[1] <= 48
    bert, _, _ = corpus.pretraining_data(max_length=48, seed=3, objective="bert")
    assert list(bert.probabilities) == [0.5, 0.5, 0.0]
