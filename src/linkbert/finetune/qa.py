"""Extractive QA's answers: the training targets from a character span, and from start/end
logits over the windows of an example back to its answer text.

Training targets (:func:`training_span_problem`, :func:`answer_token_span`) are those of the
released ``run_qa.py``. Post-processing (:func:`postprocess_qa_predictions`) is the same procedure as Hugging Face ``run_qa``'s ``postprocess_qa_predictions`` for SQuAD v1.1
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


# ---------------------------------------------------------------- training targets


def answer_token_span(offsets, sequence_ids, start_char: int, end_char: int, cls_index: int) -> tuple[int, int]:
    """Token positions of the answer ``[start_char, end_char)`` in one window, or CLS twice.

    As ``run_qa``: when the answer is not entirely inside this window's part of the
    context, the target is the CLS token (the window "has no answer").
    """
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    first, last = context[0], context[-1]
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return cls_index, cls_index
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def answer_in_context(record: dict, k: int) -> bool:
    """Whether answer ``k``'s ``answer_start`` points at its text in the context."""
    answers = record["answers"]
    start, text = answers["answer_start"][k], answers["text"][k]
    return record["context"][start:start + len(text)] == text


def training_span_problem(record: dict) -> str | None:
    """Why a training example has no answer span to learn, or None when it has one.

    As the released ``run_qa.py``, training takes the first answer's character span
    ``answer_start .. answer_start + len(text)`` whether or not the context holds that very text
    there (TriviaQA and SearchQA answers often differ from the context in case): a span inside
    the context is usable. Unusable: no answer at all (the released code would train such an
    example towards [CLS], an answer that SQuAD-style post-processing never gives), an empty
    answer text, or a span that does not lie inside the context (every window would get the
    [CLS] target the same way).
    """
    answers = record["answers"]
    if not answers["text"]:
        return "no_answer"
    start, text = answers["answer_start"][0], answers["text"][0]
    if not text:
        return "empty_answer"
    if start < 0 or start + len(text) > len(record["context"]):
        return "span_outside_context"
    return None


# ---------------------------------------------------------------- post-processing


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
