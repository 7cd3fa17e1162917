"""The figures of the quickstart's metrics.json: LinkBERT on the pairs BERT's NSP head answers."""

from __future__ import annotations

from linkbert.quickstart.figures import nsp_pairs_accuracy
from linkbert.quickstart.report import wilson_interval


def test_linkbert_is_compared_with_nsp_on_contiguous_and_random_pairs_only():
    # rows: true contiguous, random, linked; a "linked" answer on a contiguous pair counts as wrong
    evaluation = {"relation_confusion": [[30, 5, 5], [10, 25, 5], [0, 0, 40]]}
    shared = nsp_pairs_accuracy(evaluation)
    assert shared["pairs"] == 80 and shared["accuracy"] == 55 / 80
    assert shared["interval95"] == list(wilson_interval(55, 80))
