"""Running the benchmark, cell by cell: the grid (steps planned from a measured budget:
``plan.py``), its in-grid compute curve when the plan has one, and the separate compute curve
(``--curve``: steps sized from minutes of pretraining per cell)."""

from __future__ import annotations

import json
import time

from linkbert.errors import ConfigError
from linkbert.experiments.first_stage import first_stage_once
from linkbert.experiments.frame import say
from linkbert.experiments.graph.assets import prepare_assets
from linkbert.experiments.graph.cell import pretrain_config, run_cell
from linkbert.experiments.graph.grid import CURVE_VARIANTS, Context
from linkbert.experiments.graph.plan import (check_same_setup, describe_plan, load_or_make_plan, measure_step_seconds,
                                             run_seed_floor, setup)
from linkbert.experiments.graph.results import write_results
from linkbert.files import write_json


def run_grid(ctx: Context, variants, seeds, budget_minutes: float, keep_models: bool = False, *,
             fewer_seeds: bool = False, optional=()) -> dict:
    """Every cell of ``variants`` x ``seeds`` (seed by seed, so that a grid stopped early
    leaves complete seeds to pair), then results.md/results.json. With init ``first-stage`` the
    masked-LM first stage is trained first; the plan (``plan.py``) may take fewer seeds
    (``fewer_seeds``) or add ``optional`` variants and compute-curve points."""
    started = time.time()
    assets = prepare_assets(ctx, [*variants, *optional])
    classify = assets["labels"] is not None
    plan = load_or_make_plan(ctx, variants, seeds, budget_minutes, started, classify, fewer_seeds=fewer_seeds,
                             optional=optional)
    write_json(ctx.out / "plan.json", plan)
    say("graph", describe_plan(plan, ctx, assets))
    if ctx.first_stage:
        first_stage_once(ctx, pretrain_config(ctx, "linkbert", 0, plan["first_stage_steps"], init="scratch"),
                         plan["first_stage_steps"])
    cells = [(seed, variant) for seed in plan["seeds"] for variant in plan["variants"]]
    for k, (seed, variant) in enumerate(cells, start=1):
        run_seed_floor(ctx, seed, classify)
        done = (ctx.cell_dir(variant, seed) / "result.json").exists()
        if not done:
            say("graph", f"cell {k}/{len(cells)}: {variant} / seed {seed}")
        result = run_cell(ctx, variant, seed, plan["steps"], classify=classify, keep_models=keep_models)
        if not done:
            say("graph", f"  done in {result['pretrain_seconds'] + result['eval_seconds']:.0f} s: {figures(result)}")
        write_results(ctx, assets)
    for steps in plan.get("curve_steps", []):  # the in-grid curve, after every grid cell
        for seed in plan["seeds"]:
            for variant in CURVE_VARIANTS:
                if not (ctx.cell_dir(variant, seed, curve_steps=steps) / "result.json").exists():
                    say("graph", f"curve {steps} steps: {variant} / seed {seed}")
                run_cell(ctx, variant, seed, steps, classify=classify, keep_models=keep_models, curve_steps=steps)
            write_results(ctx, assets)
    summary = write_results(ctx, assets)
    say("graph", f"finished in {(time.time() - started) / 60:.1f} min: {ctx.out / 'results.md'}")
    return summary


def figures(result: dict) -> str:
    return ", ".join(f"{key} {value:.1f}" for key, value in result["metrics"].items() if value is not None)


# -- the compute curve -----------------------------------------------------------------------------

def run_curve(ctx: Context, minutes, seeds, keep_models: bool = False) -> dict:
    """``linkbert`` and ``bert`` pretrained for each of ``minutes`` per cell (steps from the
    measured step time, fixed in curve_plan.json), every cell evaluated like the grid's."""
    started = time.time()
    assets = prepare_assets(ctx, CURVE_VARIANTS)
    classify = assets["labels"] is not None
    plan = load_or_make_curve_plan(ctx, minutes, seeds)
    write_json(ctx.out / "curve_plan.json", plan)
    say("graph", "compute curve: " + ", ".join(f"{m:g} min = {plan['steps'][f'{m:g}']} steps" for m in minutes)
        + f" per cell, {len(CURVE_VARIANTS)} variants x {len(seeds)} seeds")
    if ctx.first_stage:  # the grid's first stage when it ran in this folder, else one as long as the longest point
        first_steps = max(plan["steps"].values())
        first_stage_once(ctx, pretrain_config(ctx, "linkbert", 0, first_steps, init="scratch"), first_steps)
    for m in sorted(minutes):
        for seed in seeds:
            run_seed_floor(ctx, seed, classify)
            for variant in CURVE_VARIANTS:
                if not (ctx.cell_dir(variant, seed, m) / "result.json").exists():
                    say("graph", f"curve {m:g} min: {variant} / seed {seed}")
                result = run_cell(ctx, variant, seed, plan["steps"][f"{m:g}"], classify=classify, minutes=m,
                                  keep_models=keep_models)
                say("graph", f"  {figures(result)}")
                write_results(ctx, assets)
    summary = write_results(ctx, assets)
    say("graph", f"curve finished in {(time.time() - started) / 60:.1f} min: {ctx.out / 'results.md'}")
    return summary


def load_or_make_curve_plan(ctx: Context, minutes, seeds) -> dict:
    """Steps per point; a resumed curve keeps the steps of the points it has and sizes new ones
    from the step time it measured then."""
    path = ctx.out / "curve_plan.json"
    if path.exists():
        plan = json.loads(path.read_text())
        check_same_setup(plan, ctx)
    else:
        plan = {**setup(ctx), "step_seconds": round(measure_step_seconds(ctx), 4), "steps": {}, "seeds": [],
                "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    for m in minutes:
        plan["steps"].setdefault(f"{m:g}", min(ctx.mode.max_steps, int(m * 60 / plan["step_seconds"])))
    too_few = {m: s for m, s in plan["steps"].items() if s < ctx.mode.min_steps}
    if too_few:
        raise ConfigError(f"curve points with too few pretraining steps ({too_few}; minimum {ctx.mode.min_steps}): "
                          "give more minutes per point")
    plan["seeds"] = sorted(set(plan["seeds"]) | set(seeds))
    return plan
