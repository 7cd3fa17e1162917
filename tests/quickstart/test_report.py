"""The quickstart's report: Wilson intervals, and a page that sets BERT beside LinkBERT and says
what is noise."""

from __future__ import annotations

from linkbert.quickstart.report import render_html, wilson_interval


def test_wilson_interval_matches_hand_worked_numbers():
    # 50 of 100: centre (0.5 + z²/200) / (1 + z²/100) = 0.5, half width z / 1.0384 * sqrt(0.0025 + z²/40000)
    assert wilson_interval(50, 100) == (0.4038, 0.5962)
    # 8 of 10: centre 0.7167, half width 0.2266; 0 of 10: upper bound z² / (10 + z²)
    assert wilson_interval(8, 10) == (0.4902, 0.9433)
    assert wilson_interval(0, 10) == (0.0, 0.2775) and wilson_interval(10, 10) == (0.7225, 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _metrics_with_baseline() -> dict:
    def run(objective: str, classes: list[str]) -> dict:
        return {"objective": objective, "preset": "tiny", "steps": 10, "stop_reason": "max_steps",
                "train_seconds": 5.0, "tokens": 1000, "relation_accuracy_interval95": [0.5, 0.7],
                "eval": {"pairs": 100, "mlm_accuracy": 0.1, "mlm_loss": 6.0, "relation_accuracy": 0.6,
                         "relation_chance": 1 / len(classes), "relation_labels": classes,
                         "relation_accuracy_per_class": {c: 0.6 for c in classes}}}

    def model(accuracy: float, interval: list[float]) -> dict:
        return {"dev_accuracy": accuracy, "test_accuracy": accuracy, "test_interval95": interval, "seconds": 3.0,
                "train_examples": 80}

    corpus = {"format": "jsonl", "path": "c.jsonl", "documents": 100, "segments": 300, "tokens": 9000,
              "vocab_size": 500, "link_builder": "none", "links_resolved": 200, "docs_without_outlinks": 0,
              "docs_without_inlinks": 3}
    return {"corpus": corpus, "pretrain": run("linkbert", ["contiguous", "random", "linked"]),
            "baseline": {"objective": "bert", "pretrain": run("bert", ["contiguous", "random"]),
                         "linkbert_on_nsp_pairs": {"accuracy": 0.55, "pairs": 66, "interval95": [0.43, 0.67]}},
            "finetune": {"pretrained": model(0.7, [0.6, 0.78]), "bert": model(0.65, [0.55, 0.74]),
                         "untrained": model(0.4, [0.31, 0.5]), "majority_test_accuracy": 0.3,
                         "documents": {"train": 80, "dev": 10, "test": 100}, "labels": ["a", "b", "c"],
                         "differences": {"pretrained - bert": {"points": 5.0, "intervals_overlap": True},
                                         "pretrained - untrained": {"points": 30.0, "intervals_overlap": False}}},
            "config": {}, "stage_seconds": {"prepare": 1.0}, "total_seconds": 10.0}


def test_the_report_sets_bert_beside_linkbert_and_says_what_is_noise():
    page = render_html(_metrics_with_baseline(), {})
    for text in ("<th>LinkBERT</th><th>BERT</th>", "3-way, chance 0.333", "2-way, chance 0.500",
                 "— (no such class)", "not comparable", "0.550 [0.430–0.670] of 66 pairs",
                 "pretrained BERT", "0.550–0.740", "100 test documents",
                 "against pretrained BERT: +5.0 points; the intervals overlap",
                 "against untrained: +30.0 points; the intervals do not overlap"):
        assert text in page, text


def test_a_model_that_has_not_learned_is_said_so_and_draws_no_verdict():
    """Before: a run that had learned only the majority class (a busy machine's 76 steps) was reported
    17.3 points worse than an untrained encoder, "larger than this test set's noise"."""
    metrics = _metrics_with_baseline()
    reasons = ["its relation accuracy 0.330 (95% interval from 0.290) is not above always answering the commonest "
               "relation (0.340)"]
    metrics["pretrain"]["not_learned"] = reasons
    metrics["finetune"]["differences"]["pretrained - untrained"] = {"points": -17.3, "intervals_overlap": False}
    page = render_html(metrics, {})
    assert "<strong>LinkBERT has not learned anything measurable yet</strong>: its relation accuracy 0.330" in page
    assert ("against untrained: -17.3 points; no verdict: pretrained LinkBERT has not learned anything measurable "
            "yet in pretraining") in page
    assert "larger than this test set" not in page
    assert "against pretrained BERT: +5.0 points; no verdict" in page  # LinkBERT is one of the pair
    assert "<strong>BERT has not learned" not in page  # BERT's run learned
