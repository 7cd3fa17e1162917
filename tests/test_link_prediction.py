"""Zero-shot link prediction: the queries (withheld links and their non-linked candidates), the
relation-head and embedding scorers against a plain forward pass of a tiny model, and the ranking
on hand-made cases where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linkbert.graph import DocGraph
from linkbert.link_prediction import draw_queries, embeddings, first_segment, relation_scores, score_link_prediction
from linkbert.model.loading import init_model

CLS, SEP, PAD = 2, 3, 0
SPECIAL = {"cls_id": CLS, "sep_id": SEP, "pad_id": PAD}
VOCAB = 64


def tiny_model(num_relations: int = 3):
    torch.manual_seed(0)
    return init_model("tiny", vocab_size=VOCAB, num_relations=num_relations).eval()


def segments(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(5, VOCAB, size=int(rng.integers(1, 12))) for _ in range(n)]


class FakeStore:
    """One segment per document: document ``d``'s first segment is ``docs[d]``."""

    def __init__(self, docs):
        self.docs = [np.asarray(d) for d in docs]
        self.document_offsets = np.arange(len(docs) + 1)

    def segment(self, s):
        return self.docs[s]


# -- the queries -----------------------------------------------------------------------------------


def test_queries_are_withheld_links_with_candidates_linked_with_the_source_in_neither_direction():
    full = DocGraph.from_edges(np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4]), 8)
    queries = draw_queries(full, np.array([[0, 1], [2, 3]]), 10, 3)
    assert [(q["source"], q["target"]) for q in queries] == [(0, 1), (2, 3)]
    linked = {0: {0, 1}, 2: {1, 2, 3}}  # never the source, nor a document linked with it either way
    for q in queries:
        assert len(q["candidates"]) == 3 and not linked[q["source"]] & set(q["candidates"])
        assert q["candidates"] == sorted(q["candidates"])
    assert draw_queries(full, np.array([[0, 1], [2, 3]]), 10, 3) == queries  # fixed by the seed


def test_queries_are_the_draw_they_always_were():
    """A fixed draw (what the experiments' implementation gave): a sample of ``n_queries``
    withheld links, in their order; a link without ``k`` candidates is left out."""
    full = DocGraph.from_edges(np.array([0, 1, 2, 3, 5]), np.array([1, 2, 3, 4, 6]), 10)
    assert draw_queries(full, np.array([[0, 1], [2, 3], [5, 6]]), 2, 3, seed=0) == [
        {"source": 2, "target": 3, "candidates": [4, 5, 7]}, {"source": 5, "target": 6, "candidates": [3, 4, 9]}]
    crowded = DocGraph.from_edges(np.array([0, 0]), np.array([1, 2]), 3)  # every document is linked with 0
    assert draw_queries(crowded, np.array([[0, 1]]), 5, 1) == []


# -- the scorers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("num_relations, column", [(3, 2), (2, 0)])  # LinkBERT: linked; NSP: B continues A
def test_relation_scores_are_the_heads_log_probability_of_each_pair_alone(num_relations, column):
    model = tiny_model(num_relations)
    a_list, b_list = segments(5, seed=1), segments(5, seed=2)
    scores = relation_scores(model, a_list, b_list, **SPECIAL, max_length=16, batch_size=2)  # padded batches
    expected = []
    with torch.no_grad():
        for a, b in zip(a_list, b_list):  # no padding, no batch; cut as BERT does: longest first
            a, b = list(a), list(b)
            while len(a) + len(b) > 13:
                (a if len(a) > len(b) else b).pop()
            ids = torch.tensor([[CLS, *a, SEP, *b, SEP]])
            types = torch.tensor([[0] * (len(a) + 2) + [1] * (len(b) + 1)])
            logits = model(ids, types, torch.ones_like(ids)).relation_logits
            expected.append(torch.log_softmax(logits, -1)[0, column].item())
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_relation_scores_without_a_relation_head_are_none():
    assert relation_scores(tiny_model(0), segments(2), segments(2), **SPECIAL, max_length=16) is None


def test_embeddings_are_the_normalised_mean_of_each_segment_alone():
    model = tiny_model()
    segs = segments(5, seed=3)
    vectors = embeddings(model, segs, **SPECIAL, max_length=8, batch_size=2)
    with torch.no_grad():
        for vector, segment in zip(vectors, segs):
            ids = torch.tensor([[CLS, *segment[:6].tolist(), SEP]])  # cut to max_length
            hidden, _ = model.encode(ids, torch.zeros_like(ids), torch.ones_like(ids))
            mean = hidden[0].mean(0)
            np.testing.assert_allclose(vector, (mean / mean.norm()).numpy(), rtol=1e-5, atol=1e-5)


def test_first_segment_is_the_documents_first():
    store = FakeStore([[7, 8], [9], [10, 11, 12]])
    store.document_offsets = np.array([0, 2, 3])  # document 0 has segments 0 and 1, document 1 segment 2
    assert first_segment(store, 1).tolist() == [10, 11, 12]


class OneHot(torch.nn.Module):
    """Hidden state of a token = its one-hot vector: a document's embedding is its bag of tokens.
    The relation head says "linked" when A's and B's first tokens have the same parity."""

    relation_head = torch.nn.Linear(1, 3)

    def forward(self, input_ids, token_type_ids, attention_mask):
        a = input_ids[:, 1]
        b = input_ids[torch.arange(len(input_ids)), (token_type_ids == 1).int().argmax(1)]
        logits = torch.zeros(len(input_ids), 3)
        logits[:, 2] = 5.0 * ((a % 2) == (b % 2)).float()
        return type("Out", (), {"relation_logits": logits})

    def encode(self, ids, types, mask):
        return torch.nn.functional.one_hot(ids, VOCAB).float(), None


def test_the_target_sharing_the_sources_words_ranks_first_by_embedding():
    # source 0 shares two of three tokens with its target 1, none with the candidates 2 and 3
    store = FakeStore([[10, 11, 12], [10, 11, 13], [20, 21, 22], [23, 24, 25], [40, 41, 42], [40, 41, 43]])
    queries = [{"source": 0, "target": 1, "candidates": [2, 3]}, {"source": 4, "target": 5, "candidates": [2, 3]}]
    result = score_link_prediction(OneHot(), store, queries, **SPECIAL, max_length=16)
    assert result["embedding"]["mrr"] == 1.0 and result["embedding"]["hits1"] == 1.0
    assert result["embedding"]["candidates"] == 3 and result["embedding"]["n"] == 2


def test_the_relation_head_ranks_by_its_log_probability_of_linked():
    # document d's segment is [10 + d, 10 + d]. Source 0 (even): target 2 even, candidates odd -> rank 1;
    # source 1 (odd): target 4 even, candidates odd -> behind all three -> rank 4
    store = FakeStore([[10 + d, 10 + d] for d in range(8)])
    queries = [{"source": 0, "target": 2, "candidates": [1, 3, 5]}, {"source": 1, "target": 4, "candidates": [3, 5, 7]}]
    result = score_link_prediction(OneHot(), store, queries, **SPECIAL, max_length=16)
    assert result["head"]["hits1"] == 0.5 and result["head"]["mrr"] == pytest.approx((1 + 1 / 4) / 2)
    no_head = OneHot()
    no_head.relation_head = None
    assert score_link_prediction(no_head, store, queries, **SPECIAL, max_length=16)["head"] is None
