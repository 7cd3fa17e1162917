"""What a pretraining run is fed (pretrain/data.py): the corpus's pair samplers and collator,
built with the max_length check in one call."""

from __future__ import annotations


import pytest

from linkbert.errors import ConfigError
from linkbert.pretrain.data import check_max_length, open_corpus, pretraining_data


@pytest.fixture
def folder(prepared_ring):
    return prepared_ring


def test_max_length_must_hold_two_segments_and_fit_the_positions(folder):
    corpus = open_corpus(str(folder))
    check_max_length(corpus, 43, max_positions=512)  # 2 x 20 + 3
    with pytest.raises(ConfigError, match="needs 43.*--segment-budget 19"):
        check_max_length(corpus, 42)
    with pytest.raises(ConfigError, match="512 position embeddings"):
        check_max_length(corpus, 1000, max_positions=512)
    with pytest.raises(ConfigError, match="needs 43"):  # the same check, in the same call as the samplers
        pretraining_data(corpus, max_length=42, seed=0)


def test_pretraining_data(folder):
    corpus = open_corpus(str(folder))
    data = pretraining_data(corpus, max_length=48, seed=3, heldout_fraction=0.25)
    assert data.heldout is not None and len(data.train) + len(data.heldout) == corpus.store.num_segments
    batch = data.collator([data.train.pair(0, i) for i in range(4)])
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"].shape[1] <= 48
    bert = pretraining_data(corpus, max_length=48, seed=3, objective="bert")
    assert list(bert.train.probabilities) == [0.5, 0.5, 0.0] and bert.heldout is None


def test_a_graph_of_another_corpus_is_refused_naming_it(folder, tmp_path):
    import numpy as np

    from linkbert.graph import DocGraph

    DocGraph.from_edges(np.array([0]), np.array([1]), 3).save(tmp_path / "other")
    with pytest.raises(ConfigError, match=f"{tmp_path / 'other'}: the graph has 3 nodes"):
        pretraining_data(open_corpus(str(folder)), max_length=48, seed=0, graph=tmp_path / "other")
