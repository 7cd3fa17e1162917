"""``experiments/budget.py``: the planner's arithmetic and policy, on made-up measured costs (the
measurements themselves are taken by each grid's ``plan.py``, tested with the grids)."""

from __future__ import annotations

import pytest

from linkbert.experiments.budget import plan_cells, split_budget

COSTS = {"step_s": 0.02, "run_overhead_s": 3.0, "eval_s": 5.0}


def test_the_budget_left_after_evaluations_and_runs_is_shared_equally():
    split = split_budget(budget_s=360, spent_s=60, run_overhead_s=3, eval_s=5, runs=15, evaluations=20,
                         first_stage_share=1 / 3)
    pretraining = 360 - 60 - 20 * 5 - 16 * 3  # the first stage is one more run
    assert split["first_stage_seconds"] == pytest.approx(pretraining / 3)
    assert split["pretrain_seconds_per_cell"] == pytest.approx(pretraining * 2 / 3 / 15)
    assert split["expected_seconds"] == pytest.approx(360)
    nothing_left = split_budget(budget_s=100, spent_s=60, run_overhead_s=3, eval_s=5, runs=15, evaluations=20)
    assert nothing_left["pretrain_seconds_per_cell"] == 0


def test_the_plan_keeps_every_seed_when_the_cells_are_long_enough():
    plan = plan_cells(budget_s=360, spent_s=40, **COSTS, runs_per_seed=3, evaluations_per_seed=4, seeds=5,
                      min_seeds=3, first_stage_share=1 / 3, target_steps=100)
    assert plan["seeds"] == 5 and plan["notes"] == [] and not plan["optional"] and not plan["curve"]
    per_cell = (360 - 40 - 20 * 5 - 16 * 3) * 2 / 3 / 15
    assert plan["steps"] == int(per_cell / 0.02) >= 100
    assert plan["first_stage_steps"] == int(plan["first_stage_seconds"] / 0.02)
    assert plan["expected_seconds"] <= 360


def test_seeds_shrink_to_the_modes_minimum_rather_than_cells_too_short_to_learn():
    costly = {**COSTS, "eval_s": 12.0}
    plan = plan_cells(budget_s=360, spent_s=40, **costly, runs_per_seed=3, evaluations_per_seed=4, seeds=5,
                      min_seeds=3, target_steps=400)
    assert plan["seeds"] < 5 and plan["steps"] >= 400
    assert plan["notes"][0].startswith("5 seeds would leave") and "(aim 400)" in plan["notes"][0]
    fixed = plan_cells(budget_s=360, spent_s=40, **costly, runs_per_seed=3, evaluations_per_seed=4, seeds=5,
                       target_steps=400)  # seeds given by the user: never fewer; the caller refuses the plan
    assert fixed["seeds"] == 5 and fixed["steps"] < 400


def test_optional_variants_and_the_curve_come_only_when_the_budget_allows():
    roomy = plan_cells(budget_s=3600, spent_s=40, **COSTS, runs_per_seed=3, evaluations_per_seed=4, seeds=5,
                       optional={"no-drp": 1}, curve_fractions=(0.25, 0.5), target_steps=100)
    assert roomy["optional"] == ["no-drp"] and roomy["curve"] and roomy["notes"] == []
    tight = plan_cells(budget_s=360, spent_s=40, **COSTS, runs_per_seed=3, evaluations_per_seed=4, seeds=5,
                       optional={"no-drp": 1}, curve_fractions=(0.25, 0.5), target_steps=100)
    assert tight["optional"] == [] and not tight["curve"]
    assert tight["notes"][0].startswith("no-drp left out: it would leave")
    assert tight["notes"][1].startswith("no compute curve: its 20 more cells (linkbert and bert at 0.25, 0.5")
    # without the extras the grid's cells keep the steps they would have had anyway
    alone = plan_cells(budget_s=360, spent_s=40, **COSTS, runs_per_seed=3, evaluations_per_seed=4, seeds=5,
                       target_steps=100)
    assert tight["steps"] == alone["steps"]


def test_a_cap_on_steps_is_what_the_expected_time_counts():
    plan = plan_cells(budget_s=3600, spent_s=10, **COSTS, runs_per_seed=2, evaluations_per_seed=2, seeds=2,
                      max_steps=3)
    assert plan["steps"] == 3
    assert plan["expected_seconds"] == pytest.approx(10 + 4 * 5 + 4 * 3 + 4 * 3 * 0.02, abs=0.1)  # rounded to 0.1 s
