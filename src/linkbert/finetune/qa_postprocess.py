"""From start/end logits over the windows of an example to its answer text.

The same procedure as Hugging Face ``run_qa``'s ``postprocess_qa_predictions`` for SQuAD v1.1
(which the released LinkBERT QA runs used): in every window (feature) of an example take the
``n_best`` highest start and end logits, keep the pairs that lie inside the context, end at
or after the start and span at most ``max_answer_length`` tokens, score a pair by
start logit + end logit, and answer with the context characters of the best pair over all
windows of the example. One difference: when no valid span exists at all, the answer is the
empty string (HF writes the placeholder ``"empty"``); both score zero against real answers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

Offsets = Sequence[tuple[int, int] | None]


def window_candidates(start_logits: np.ndarray, end_logits: np.ndarray, offsets: Offsets,
                      n_best: int = 20, max_answer_length: int = 30) -> list[tuple[float, int, int]]:
    """Valid spans of one window as ``(score, char_start, char_end)``.

    ``offsets[i]`` is the character span of token ``i`` in the context, or None for tokens
    that are not context (question, special tokens, padding): spans may not touch those.
    """
    n = min(len(offsets), len(start_logits), len(end_logits))
    start_logits, end_logits = np.asarray(start_logits[:n]), np.asarray(end_logits[:n])
    # stable sort on the negated logits: ties keep the earlier token, so results are reproducible
    starts = np.argsort(-start_logits, kind="stable")[:n_best]
    ends = np.argsort(-end_logits, kind="stable")[:n_best]
    spans = []
    for s in starts.tolist():
        if offsets[s] is None:
            continue
        for e in ends.tolist():
            if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                continue
            spans.append((float(start_logits[s] + end_logits[e]), offsets[s][0], offsets[e][1]))
    return spans


def nbest_answers(examples: Sequence[dict], features: Sequence[dict], start_logits: Sequence[np.ndarray],
                  end_logits: Sequence[np.ndarray], n_best: int = 20,
                  max_answer_length: int = 30) -> dict[str, list[dict]]:
    """For each example id, its ``n_best`` best spans over all its windows, best first.

    ``features[j]`` has ``example_index`` (position of its example in ``examples``) and
    ``offset_mapping`` (see ``window_candidates``); ``start_logits[j]``/``end_logits[j]`` are
    that window's logits (any padding beyond ``offset_mapping`` is ignored).
    """
    windows = defaultdict(list)
    for j, feature in enumerate(features):
        windows[feature["example_index"]].append(j)
    result = {}
    for i, example in enumerate(examples):
        spans = []
        for j in windows.get(i, []):
            spans += window_candidates(start_logits[j], end_logits[j], features[j]["offset_mapping"],
                                       n_best, max_answer_length)
        spans.sort(key=lambda span: -span[0])  # stable: equal scores keep window order
        context = example["context"]
        result[str(example["id"])] = [{"text": context[a:b], "score": score, "start": a}
                                      for score, a, b in spans[:n_best]]
    return result


def postprocess_qa_predictions(examples: Sequence[dict], features: Sequence[dict],
                               start_logits: Sequence[np.ndarray], end_logits: Sequence[np.ndarray],
                               n_best: int = 20, max_answer_length: int = 30) -> dict[str, str]:
    """``{example id: answer text}``, the best span of each example (``""`` when none is valid)."""
    nbest = nbest_answers(examples, features, start_logits, end_logits, n_best, max_answer_length)
    return {qid: (spans[0]["text"] if spans else "") for qid, spans in nbest.items()}
