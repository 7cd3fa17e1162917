"""Extractive QA by hand: training targets from character spans; post-processing (the best valid
span over a question's windows, n-best lists, answer length limits, padding). No model is involved."""

from __future__ import annotations

import numpy as np

from linkbert.finetune.qa import (
    answer_token_span,
    nbest_answers,
    postprocess_qa_predictions,
    training_span_problem,
    window_candidates,
)

CONTEXT = "alpha beta gamma delta epsilon"
# character spans of the five context words
WORDS = [(0, 5), (6, 10), (11, 16), (17, 22), (23, 30)]


def window(words):
    """Offsets of a window [CLS] q [SEP] <words> [SEP]: non-context tokens are None."""
    return [None, None, None] + [WORDS[w] for w in words] + [None]


def logits(n, high: dict):
    values = np.full(n, -10.0)
    for position, value in high.items():
        values[position] = value
    return values


def test_best_span_in_one_window():
    offsets = window([0, 1, 2, 3, 4])
    start = logits(len(offsets), {4: 5.0, 5: 1.0})  # "beta" best start
    end = logits(len(offsets), {5: 4.0, 4: 1.0})  # "gamma" best end
    answers = postprocess_qa_predictions([{"id": "q", "context": CONTEXT}],
                                         [{"example_index": 0, "offset_mapping": offsets}], [start], [end])
    assert answers == {"q": "beta gamma"}


def test_spans_outside_the_context_or_reversed_are_never_chosen():
    offsets = window([0, 1, 2])
    # the highest logits sit on [CLS] (0) and on the question (1): both must be skipped
    start = logits(len(offsets), {0: 9.0, 1: 8.0, 5: 2.0, 4: 1.0})
    end = logits(len(offsets), {0: 9.0, 1: 8.0, 3: 3.0, 4: 2.5})
    # end 3 < start 5 is reversed; the best valid pair is start 4 ("beta") .. end 4
    assert postprocess_qa_predictions([{"id": "q", "context": CONTEXT}],
                                      [{"example_index": 0, "offset_mapping": offsets}],
                                      [start], [end]) == {"q": "beta"}


def test_max_answer_length_limits_the_span():
    offsets = window([0, 1, 2, 3, 4])
    start = logits(len(offsets), {3: 5.0, 6: 1.0})  # "alpha", "delta"
    end = logits(len(offsets), {7: 5.0})  # "epsilon"
    example, feature = [{"id": "q", "context": CONTEXT}], [{"example_index": 0, "offset_mapping": offsets}]
    assert postprocess_qa_predictions(example, feature, [start], [end]) == {"q": CONTEXT}
    # 5 tokens are too long with max_answer_length=2: "delta epsilon" (2 tokens) wins
    assert postprocess_qa_predictions(example, feature, [start], [end], max_answer_length=2) == {"q": "delta epsilon"}


def test_n_best_keeps_only_the_top_candidates():
    offsets = window([0, 1, 2, 3, 4])
    start = logits(len(offsets), {3: 3.0, 4: 2.0, 5: 1.0})
    end = logits(len(offsets), {5: 3.0, 6: 2.0, 7: 1.0})
    # with n_best=1 only start 3 and end 5 are candidates
    assert window_candidates(start, end, offsets, n_best=1) == [(6.0, 0, 16)]
    best = nbest_answers([{"id": "q", "context": CONTEXT}], [{"example_index": 0, "offset_mapping": offsets}],
                         [start], [end], n_best=3)["q"]
    assert [b["text"] for b in best] == ["alpha beta gamma", "alpha beta gamma delta", "beta gamma"]
    assert [b["score"] for b in best] == [6.0, 5.0, 5.0]


def test_the_answer_can_come_from_the_second_window():
    # two overlapping windows of one example: words 0-2, then words 2-4
    first, second = window([0, 1, 2]), window([2, 3, 4])
    features = [{"example_index": 0, "offset_mapping": first}, {"example_index": 0, "offset_mapping": second}]
    starts = [logits(len(first), {3: 1.0}), logits(len(second), {4: 4.0})]  # "delta" in window 2
    ends = [logits(len(first), {3: 1.0}), logits(len(second), {5: 4.0})]  # "epsilon" in window 2
    assert postprocess_qa_predictions([{"id": "q", "context": CONTEXT}], features, starts, ends) == \
        {"q": "delta epsilon"}


def test_no_valid_span_gives_an_empty_answer_and_every_example_is_answered():
    offsets = [None, None, None]
    examples = [{"id": "a", "context": CONTEXT}, {"id": "b", "context": CONTEXT}]
    answers = postprocess_qa_predictions(examples, [{"example_index": 0, "offset_mapping": offsets}],
                                         [np.zeros(3)], [np.zeros(3)])
    assert answers == {"a": "", "b": ""}


def test_padding_beyond_the_offsets_is_ignored():
    offsets = window([0])
    start = np.concatenate([logits(len(offsets), {3: 1.0}), [50.0, 50.0]])  # padded positions
    end = np.concatenate([logits(len(offsets), {3: 1.0}), [50.0, 50.0]])
    assert postprocess_qa_predictions([{"id": "q", "context": CONTEXT}],
                                      [{"example_index": 0, "offset_mapping": offsets}],
                                      [start], [end]) == {"q": "alpha"}


# ---------------------------------------------------------------- training targets


def _qa(context: str, starts: list[int], texts: list[str]) -> dict:
    return {"context": context, "answers": {"answer_start": starts, "text": texts}}


def test_a_training_span_is_usable_when_it_lies_inside_the_context():
    context = "The Eiffel Tower is in Paris."
    assert training_span_problem(_qa(context, [23], ["Paris"])) is None
    assert training_span_problem(_qa(context, [23], ["PARIS"])) is None  # other case (TriviaQA): the span trains
    assert training_span_problem(_qa(context, [0], ["Paris"])) is None  # other text, inside: as the released code
    assert training_span_problem(_qa(context, [26], ["Paris"])) == "span_outside_context"
    assert training_span_problem(_qa(context, [-1], ["Paris"])) == "span_outside_context"
    assert training_span_problem(_qa(context, [3], [""])) == "empty_answer"
    assert training_span_problem(_qa(context, [], [])) == "no_answer"


def test_answer_token_span_inside_and_outside_the_window():
    # [CLS] q [SEP] alpha beta gamma [SEP]; sequence ids mark the context with 1
    offsets = [(0, 0), (0, 1), (0, 0), (0, 5), (6, 10), (11, 16), (0, 0)]
    sequence_ids = [None, 0, None, 1, 1, 1, None]
    assert answer_token_span(offsets, sequence_ids, 6, 16, cls_index=0) == (4, 5)  # "beta gamma"
    assert answer_token_span(offsets, sequence_ids, 0, 5, cls_index=0) == (3, 3)  # "alpha"
    # "delta" (17-22) is beyond this window: the target is CLS
    assert answer_token_span(offsets, sequence_ids, 17, 22, cls_index=0) == (0, 0)
    # an answer only partly inside the window is also CLS
    assert answer_token_span(offsets, sequence_ids, 11, 22, cls_index=0) == (0, 0)


def test_answer_inside_a_sub_token_word():
    # context "hyperparathyroidism x": one word in three sub-tokens
    offsets = [(0, 0), (0, 1), (0, 0), (0, 5), (5, 11), (11, 19), (20, 21), (0, 0)]
    sequence_ids = [None, 0, None, 1, 1, 1, 1, None]
    assert answer_token_span(offsets, sequence_ids, 0, 19, cls_index=0) == (3, 5)
