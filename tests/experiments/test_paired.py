"""``experiments/paired.py``: when a comparison must not give a verdict (a variant too short to
learn), and the table both grids print. The paired statistics are tested in test_metrics.py, the
verdicts themselves with the graph benchmark (test_graph_experiment.py)."""

from __future__ import annotations

from linkbert.experiments.paired import (compare, comparison_lines, learning_check, learning_lines, summarise,
                                         unjudged_metrics)


def row(mlm: float | None, relation: float | None) -> dict:
    out = {}
    if mlm is not None:
        out["heldout_mlm_acc"] = {"mean": mlm, "std": 0.0, "n": 5}
    if relation is not None:
        out["heldout_relation_acc"] = {"mean": relation, "std": 0.0, "n": 5}
    return out


def test_a_model_near_chance_is_said_not_to_have_learned():
    assert learning_check(row(35.0, 60.0), relation_classes=3) == {"mlm": None, "relation": None}
    stuck = learning_check(row(5.2, 34.0), relation_classes=3)
    assert "held-out MLM accuracy 5.2%" in stuck["mlm"] and "chance 33.3%" in stuck["relation"]
    assert learning_check(row(35.0, 52.0), relation_classes=2)["relation"]  # NSP: chance is one half
    assert learning_check(row(35.0, 52.0), relation_classes=3)["relation"] is None
    assert learning_check(row(35.0, None), relation_classes=0) == {"mlm": None, "relation": None}  # no head
    assert learning_check({}, relation_classes=3) == {"mlm": None, "relation": None}  # nothing to judge by


def cells(values: dict[str, list[float]], mlm: dict[str, float]) -> list[dict]:
    return [{"variant": v, "seed": s, "metrics": {"m": x, "head": x, "heldout_mlm_acc": mlm[v]}}
            for v, xs in values.items() for s, x in enumerate(xs)]


def test_a_clear_difference_between_models_that_did_not_learn_gets_no_verdict():
    keys = [("m", "metric"), ("head", "head metric")]
    values = {"linkbert": [60.0, 61.0, 62.0, 63.0, 64.0], "bert": [50.0, 50.5, 51.0, 51.2, 52.0]}
    learned = summarise(cells(values, {"linkbert": 40.0, "bert": 41.0}))
    checks = {v: learning_check(learned[v], 3) for v in values}
    judged = compare(learned, "linkbert", "bert", keys, unjudged_metrics(checks, ("linkbert", "bert"), keys, ["head"]))
    assert judged["m"]["verdict"].startswith("linkbert beats bert") and judged["m"]["judged"]
    stuck = summarise(cells(values, {"linkbert": 40.0, "bert": 6.0}))
    checks = {v: learning_check(stuck[v], 3) for v in values}
    unjudged = unjudged_metrics(checks, ("linkbert", "bert"), keys, ["head"])
    result = compare(stuck, "linkbert", "bert", keys, unjudged)
    for key, _ in keys:
        assert result[key]["verdict"] == "not judged: bert too short to learn (masked LM near chance)"
        assert not result[key]["judged"] and result[key]["p"] < 0.05  # the figures are still there
    table = "\n".join(comparison_lines("linkbert", "bert", result, keys))
    assert "| metric | +11.06 [10.01, 12.11] | 8.2e-06 |" in table and table.count("| not judged: ") == 2
    text = "\n".join(learning_lines(checks, stuck))
    assert "| bert | 6.0 ± 0.0 | n/a | no: held-out MLM accuracy 6.0%" in text and "too short to learn" in text


def test_a_relation_head_at_chance_withholds_only_the_head_verdicts():
    checks = {"linkbert": learning_check(row(30.0, 34.0), 3), "bert": learning_check(row(30.0, 80.0), 2)}
    unjudged = unjudged_metrics(checks, ("linkbert", "bert"), [("m", "m"), ("head", "h")], ["head"])
    assert unjudged == {"head": "linkbert's relation head too short to learn (near chance)"}
