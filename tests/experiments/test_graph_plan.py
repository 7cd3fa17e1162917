"""``experiments/graph/plan.py``: the gpu mode's plan from costs measured on the device (here made
up: the measuring itself runs in the slow end-to-end test and in the gpu_evidence.sh smoke), what
it prints before any training, and how it bends to the budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkbert.errors import ConfigError
from linkbert.experiments.first_stage import FIRST_STAGE
from linkbert.experiments.graph import plan
from linkbert.experiments.graph.grid import DEFAULT_VARIANTS, MODES, Context

ASSETS = {"labels": {"classes": {c: 300 for c in "abcdefg"}, "documents": 2708},
          "linkpred": {"queries": 500, "candidates": 9}, "graphs": {"withheld_pairs": 527}}


def gpu_context(out: Path) -> Context:
    return Context(out=out, corpus_path=out / "cora.jsonl", init=FIRST_STAGE, init_source=FIRST_STAGE,
                   tokenizer="train", mode=MODES["gpu"], mode_name="gpu", device="cpu")


def measured(step_s: float, eval_s: float) -> dict:
    return {"step_seconds": step_s, "floor_seconds": 2.0, "eval_seconds": eval_s, "run_overhead_seconds": 3.0,
            "evaluation_seconds": {"finetuned": eval_s - 2, "probe": 1.0, "link_prediction": 1.0},
            "probe": {"steps": 30, "metrics": {"lp_emb_mrr": 30.0}}}


def test_the_gpu_plan_is_printed_before_any_training(tmp_path, monkeypatch):
    ctx = gpu_context(tmp_path)
    monkeypatch.setattr(plan, "measure_costs", lambda ctx, seed, classify: measured(0.025, 6.0))
    made = plan.load_or_make_plan(ctx, list(DEFAULT_VARIANTS), list(range(5)), 6, started=__import__("time").time(),
                                  classify=True, fewer_seeds=True, optional=("no-drp",))
    assert made["steps"] >= MODES["gpu"].min_steps and made["first_stage_steps"] > made["steps"]
    assert made["seeds"] == [0, 1, 2, 3, 4] and made["expected_minutes"] <= 6
    assert made["init"] == FIRST_STAGE and made["device"].startswith("CPU")
    text = plan.describe_plan(made, ctx, ASSETS)
    for expected in (f"{made['steps']} pretraining steps per cell (batch 256 x 128 tokens",
                     f"first stage: {made['first_stage_steps']} steps of masked LM only (mini",
                     "evaluation ~6 s per cell (finetuned 4.0 s, probe 1.0 s, link prediction 1.0 s)",
                     "link prediction: 500 withheld links x 10 candidates", "expected: "):
        assert expected in text, text
    # no-drp and the curve: each in, or a line saying why not
    assert ("no-drp" in made["variants"]) != any(n.startswith("no-drp left out") for n in made["notes"])
    assert bool(made["curve_steps"]) != any(n.startswith("no compute curve") for n in made["notes"])


def test_a_budget_the_evaluations_eat_shrinks_the_seeds_then_is_refused(tmp_path, monkeypatch):
    ctx = gpu_context(tmp_path)
    monkeypatch.setattr(plan, "measure_costs", lambda ctx, seed, classify: measured(0.025, 14.0))
    made = plan.load_or_make_plan(ctx, list(DEFAULT_VARIANTS), list(range(5)), 6, started=__import__("time").time(),
                                  classify=True, fewer_seeds=True)
    assert 3 <= len(made["seeds"]) < 5 and made["notes"][0].startswith("5 seeds would leave")
    assert "no compute curve" in " ".join(made["notes"]) and not made["curve_steps"]
    monkeypatch.setattr(plan, "measure_costs", lambda ctx, seed, classify: measured(0.025, 40.0))
    with pytest.raises(ConfigError, match="the budget leaves 0 pretraining steps per cell"):
        plan.load_or_make_plan(ctx, list(DEFAULT_VARIANTS), list(range(5)), 6, started=__import__("time").time(),
                               classify=True, fewer_seeds=True)
