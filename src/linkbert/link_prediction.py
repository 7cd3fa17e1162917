"""Zero-shot link prediction with a pretrained ``LinkPretrainingModel``, on withheld links.

A query is a withheld link ``(source, target)`` and ``candidates``: documents linked with the
source in neither direction (:func:`draw_queries`). Each document is read as its first segment. The true target is
ranked among the candidates (:func:`linkbert.metrics.rank_metrics`) by two scorers:

* the **relation head**: log P(linked) of ``[CLS] source [SEP] candidate [SEP]``; a 2-way head
  is BERT's NSP, whose "B continues A" class stands in for "linked"; a model without a relation
  head (the MLM-only objective) has no such score;
* the **embedding**: the cosine of the two documents' mean-pooled last hidden states, defined
  for every model.

Example::

    >>> result = score_link_prediction(model, corpus.store, queries, cls_id=tok.cls_token_id,
    ...                                sep_id=tok.sep_token_id, pad_id=tok.pad_token_id, max_length=128)
    >>> result["head"]["mrr"], result["embedding"]["hits1"]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from linkbert.collator import pair_batch
from linkbert.metrics import rank_metrics
from linkbert.objectives import OBJECTIVES, Relation


def draw_queries(full, withheld: np.ndarray, n_queries: int, k: int, seed: int = 0) -> list[dict]:
    """Up to ``n_queries`` of the ``withheld`` links (an ``(m, 2)`` array of (source, target))
    ``{"source", "target", "candidates"}``, each with ``k`` candidates drawn uniformly among the
    documents linked with the source in neither direction in the *full* ``DocGraph`` (a candidate
    is never a real, withheld or kept, link of the source); a link whose source has fewer than
    ``k`` such documents is left out."""
    rng = np.random.default_rng((seed, 31337))
    src, dst = full.edges()
    linked: dict[int, set] = {}
    for s, t in zip(src.tolist(), dst.tolist()):
        linked.setdefault(s, set()).add(t)
        linked.setdefault(t, set()).add(s)
    queries = []
    for row in sorted(rng.permutation(len(withheld))[:n_queries].tolist()):
        s, t = int(withheld[row, 0]), int(withheld[row, 1])
        banned = np.fromiter(linked.get(s, set()) | {s, t}, dtype=np.int64)
        allowed = np.setdiff1d(np.arange(full.num_nodes), banned)
        if len(allowed) >= k:
            queries.append({"source": s, "target": t,
                            "candidates": sorted(rng.choice(allowed, k, replace=False).tolist())})
    return queries


def relation_scores(model, a_list: Sequence, b_list: Sequence, *, cls_id: int, sep_id: int, pad_id: int,
                    max_length: int, batch_size: int = 64, device: str | torch.device = "cpu",
                    separators_between: int = 1) -> np.ndarray | None:
    """log P(linked | A, B) of each pair from ``model``'s relation head (log P(isNext) for a
    2-way NSP head), the pairs laid out as in pretraining (``separators_between``: 2 for
    RoBERTa's tokenizer); None for a model without a relation head."""
    if getattr(model, "relation_head", None) is None:
        return None
    classes = getattr(model, "num_relations", None) or model.relation_head.out_features
    linkbert_head = classes == OBJECTIVES["linkbert"]
    column = int(Relation.LINKED if linkbert_head else Relation.CONTIGUOUS)
    out = []
    with torch.no_grad():
        for start in range(0, len(a_list), batch_size):
            batch = pair_batch(a_list[start:start + batch_size], b_list[start:start + batch_size], cls_id=cls_id,
                               sep_id=sep_id, pad_id=pad_id, max_length=max_length,
                               separators_between=separators_between)
            logits = model(**{k: v.to(device) for k, v in batch.items()}).relation_logits.float()
            out.append(torch.log_softmax(logits, -1)[:, column].cpu().numpy())
    return np.concatenate(out)


def embeddings(model, segments: Sequence, *, cls_id: int, sep_id: int, pad_id: int, max_length: int,
               batch_size: int = 64, device: str | torch.device = "cpu") -> np.ndarray:
    """``(len(segments), hidden)``: the L2-normalised mean over the tokens of ``[CLS] segment
    [SEP]`` (segment cut to ``max_length``) of ``model.encode``'s last hidden states."""
    out = []
    with torch.no_grad():
        for start in range(0, len(segments), batch_size):
            ids, mask = _single_batch(segments[start:start + batch_size], cls_id, sep_id, pad_id, max_length)
            ids, mask = ids.to(device), mask.to(device)
            hidden, _ = model.encode(ids, torch.zeros_like(ids), mask)
            pooled = (hidden.float() * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
    return np.concatenate(out)


def _single_batch(segments: Sequence, cls_id: int, sep_id: int, pad_id: int,
                  max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] segment [SEP]`` rows, padded to the longest: ``(input_ids, attention_mask)``."""
    width = min(max(len(s) for s in segments), max_length - 2) + 2
    ids = np.full((len(segments), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, segment in enumerate(segments):
        segment = list(segment[:width - 2])
        ids[row, :len(segment) + 2] = [cls_id, *segment, sep_id]
        mask[row, :len(segment) + 2] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def first_segment(store, document: int) -> np.ndarray:
    """The tokens of ``document``'s first segment in a ``SegmentStore``."""
    return np.asarray(store.segment(int(store.document_offsets[document])))


def score_link_prediction(model, store, queries: Sequence[dict], *, cls_id: int, sep_id: int, pad_id: int,
                          max_length: int, device: str | torch.device = "cpu", separators_between: int = 1,
                          batch_size: int = 64) -> dict:
    """Rank each query's ``target`` among its ``candidates`` (document indices of ``store``):
    ``{"head": rank metrics, or None without a relation head, "embedding": rank metrics}``.
    Puts ``model`` in eval mode; ``batch_size``: rows per forward pass."""
    model.eval()
    options = {"cls_id": cls_id, "sep_id": sep_id, "pad_id": pad_id, "max_length": max_length, "device": device,
               "batch_size": batch_size}
    sources = [q["source"] for q in queries]
    candidates = [[q["target"], *q["candidates"]] for q in queries]  # the true target in column 0
    a_list = [first_segment(store, s) for s, row in zip(sources, candidates) for _ in row]
    b_list = [first_segment(store, c) for row in candidates for c in row]
    result = {"head": None}
    scores = relation_scores(model, a_list, b_list, **options, separators_between=separators_between)
    if scores is not None:
        scores = scores.reshape(len(queries), len(candidates[0]) if candidates else 0)
        result["head"] = rank_metrics(scores[:, 0], scores[:, 1:])
    docs = sorted(set(sources) | {c for row in candidates for c in row})
    vectors = dict(zip(docs, embeddings(model, [first_segment(store, d) for d in docs], **options)))
    cosine = np.array([[float(vectors[s] @ vectors[c]) for c in row] for s, row in zip(sources, candidates)])
    result["embedding"] = rank_metrics(cosine[:, 0], cosine[:, 1:])
    return result
