"""The figures of the quickstart's metrics.json: LinkBERT on the pairs BERT's NSP head answers."""

from __future__ import annotations

import pytest

from linkbert.quickstart.figures import not_learned, nsp_pairs_accuracy
from linkbert.quickstart.report import wilson_interval


def test_linkbert_is_compared_with_nsp_on_contiguous_and_random_pairs_only():
    # rows: true contiguous, random, linked; a "linked" answer on a contiguous pair counts as wrong
    evaluation = {"relation_confusion": [[30, 5, 5], [10, 25, 5], [0, 0, 40]]}
    shared = nsp_pairs_accuracy(evaluation)
    assert shared["pairs"] == 80 and shared["accuracy"] == 55 / 80
    assert shared["interval95"] == list(wilson_interval(55, 80))


def _evaluation(correct: list[int], mlm_accuracy: float) -> dict:
    """Held-out figures of 100 pairs a class but the linked (50), ``correct`` of each class right."""
    totals = [100, 100, 50]
    confusion = [[c if i == j else 0 for j in range(3)] for i, c in enumerate(correct)]
    for i, (c, total) in enumerate(zip(correct, totals)):
        confusion[i][(i + 1) % 3] = total - c
    return {"relation_confusion": confusion, "relation_accuracy": sum(correct) / sum(totals),
            "relation_distribution": dict(zip(["contiguous", "random", "linked"], totals)),
            "mlm_accuracy": mlm_accuracy}


@pytest.mark.parametrize("correct, mlm, words", [
    ([100, 0, 0], 0.20, ["relation accuracy 0.400 (95% interval from 0.341) is not above always answering the "
                         "commonest relation (0.400)"]),     # the majority class alone
    ([40, 40, 20], 0.20, ["relation accuracy 0.400"]),   # chance
    ([90, 80, 40], 0.061, ["masked-token accuracy 0.061 is within 2 points of always answering the commonest "
                           "token (0.050)"]),
    ([90, 80, 40], 0.20, []),                              # learned both
])
def test_not_learned_says_why_or_nothing(correct, mlm, words):
    reasons = not_learned(_evaluation(correct, mlm), mlm_floor=0.05)
    assert len(reasons) == len(words) and all(w in r for w, r in zip(words, reasons)), reasons
