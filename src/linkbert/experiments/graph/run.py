"""Planning and running the benchmark: the grid (steps sized from a measured budget) and the
compute curve (steps sized from minutes of pretraining per cell), cell by cell."""

from __future__ import annotations

import json
import time

from linkbert.errors import ConfigError
from linkbert.experiments.frame import say
from linkbert.experiments.graph.assets import build_fewshot_data, prepare_assets
from linkbert.experiments.graph.cell import pretrain_config, run_bow_cell, run_cell
from linkbert.experiments.graph.grid import CURVE_VARIANTS, VARIANTS, Context
from linkbert.experiments.graph.results import write_results
from linkbert.files import write_json

OVERHEAD_SECONDS = 15.0  # per pretraining run: model set-up, held-out evaluation, checkpoints


def run_grid(ctx: Context, variants, seeds, budget_minutes: float, keep_models: bool = False) -> dict:
    """Every cell of ``variants`` x ``seeds`` (seed by seed, so that a grid stopped early
    leaves complete seeds to pair), then results.md/results.json."""
    started = time.time()
    assets = prepare_assets(ctx, variants)
    classify = assets["labels"] is not None
    plan = load_or_make_plan(ctx, variants, seeds, budget_minutes, started, classify)
    write_json(ctx.out / "plan.json", plan)
    say("graph", describe_plan(plan, ctx, assets))
    cells = [(seed, variant) for seed in seeds for variant in variants]
    for k, (seed, variant) in enumerate(cells, start=1):
        run_seed_floor(ctx, seed, classify)
        done = (ctx.cell_dir(variant, seed) / "result.json").exists()
        if not done:
            say("graph", f"cell {k}/{len(cells)}: {variant} / seed {seed}")
        result = run_cell(ctx, variant, seed, plan["steps"], classify=classify, keep_models=keep_models)
        if not done:
            say("graph", f"  done in {result['pretrain_seconds'] + result['eval_seconds']:.0f} s: {figures(result)}")
        write_results(ctx, assets)
    summary = write_results(ctx, assets)
    say("graph", f"finished in {(time.time() - started) / 60:.1f} min: {ctx.out / 'results.md'}")
    return summary


def run_seed_floor(ctx: Context, seed: int, classify: bool) -> None:
    """A seed's few-shot sets and its bag-of-words floor, before any model of the seed."""
    if classify:
        build_fewshot_data(ctx, seed)
    run_bow_cell(ctx, seed, classify=classify)


def figures(result: dict) -> str:
    return ", ".join(f"{key} {value:.1f}" for key, value in result["metrics"].items() if value is not None)


# -- the grid's plan -------------------------------------------------------------------------------

def load_or_make_plan(ctx: Context, variants, seeds, budget_minutes: float, started: float, classify: bool) -> dict:
    """The saved plan, widened to new variants and seeds (its steps are kept: every cell stays
    comparable); else a new one, refused when it leaves too few steps."""
    plan_file = ctx.out / "plan.json"
    if plan_file.exists():
        plan = json.loads(plan_file.read_text())
        check_same_setup(plan, ctx)
        plan.update(variants=sorted(set(plan["variants"]) | set(variants), key=list(VARIANTS).index),
                    seeds=sorted(set(plan["seeds"]) | set(seeds)))
        plan["cells"] = len(plan["variants"]) * len(plan["seeds"])
        say("graph", f"resuming: the plan of {plan['created']} fixes the steps ({plan['steps']})")
    else:
        plan = make_plan(ctx, variants, seeds, budget_minutes, started, classify)
    if any(VARIANTS[v].pretrain for v in variants) and plan["steps"] < ctx.mode.min_steps:
        raise ConfigError(f"the budget leaves {plan['steps']} pretraining steps per cell (minimum "
                          f"{ctx.mode.min_steps}): raise --budget-minutes or lower --seeds / --variants (a saved plan: "
                          "use another --out)")
    return plan


def setup(ctx: Context) -> dict:
    """What a plan's steps were measured for: a resumed grid or curve must keep it."""
    return {"mode": ctx.mode_name, "init": ctx.init, "init_source": ctx.init_source, "shots": list(ctx.mode.shots)}


def check_same_setup(plan: dict, ctx: Context) -> None:
    for key, value in setup(ctx).items():
        if plan.get(key) != value:
            raise ConfigError(f"{ctx.out} was planned with {key} {plan.get(key)!r}, not {value!r}: "
                              "use another --out, or the same settings")


def measure_step_seconds(ctx: Context) -> float:
    """Seconds per pretraining step on this machine (``steps.measure_step_seconds``)."""
    from linkbert.experiments.steps import measure_step_seconds as measure

    return measure(ctx, pretrain_config(ctx, "linkbert", 0, 100))


def make_plan(ctx: Context, variants, seeds, budget_minutes: float, started: float, classify: bool) -> dict:
    """Steps per cell such that the whole grid fits ``budget_minutes`` (counted from ``started``).

    Measured first: the seconds of a pretraining step, and the evaluation time of a cell (the
    ``init`` cell of the first seed, which is part of the results), and of a seed's floor.
    Every pretraining cell then gets the same share of what is left: the same number of steps
    (equal compute across variants). The plan is saved and reused by a resumed grid.
    """
    step_s = measure_step_seconds(ctx)
    floor_started = time.time()
    run_seed_floor(ctx, seeds[0], classify)
    floor_s = time.time() - floor_started
    reference = run_cell(ctx, "init", seeds[0], 0, classify=classify)
    eval_s = reference["pretrain_seconds"] + reference["eval_seconds"]
    trained = [v for v in variants if VARIANTS[v].pretrain]
    n_cells = len(trained) * len(seeds)
    n_evals = n_cells + ("init" in variants) * (len(seeds) - 1)
    remaining = budget_minutes * 60 - (time.time() - started) - eval_s * n_evals - floor_s * (len(seeds) - 1)
    per_cell = (remaining - OVERHEAD_SECONDS * n_cells) / max(1, n_cells)
    steps = min(ctx.mode.max_steps, int(per_cell / step_s)) if per_cell > 0 and n_cells else 0
    say("graph", f"measured: {step_s:.3f} s per pretraining step, {eval_s:.0f} s per cell's evaluation, "
                 f"{floor_s:.0f} s per seed's floor")
    return {**setup(ctx), "budget_minutes": budget_minutes, "variants": list(variants), "seeds": list(seeds),
            "steps": steps, "pretrain_seconds_per_cell": round(per_cell, 1),
            "measured": {"step_seconds": round(step_s, 4), "eval_seconds": round(eval_s, 1),
                         "floor_seconds": round(floor_s, 1)},
            "cells": len(variants) * len(seeds), "created": time.strftime("%Y-%m-%d %H:%M:%S")}


def describe_plan(plan: dict, ctx: Context, assets: dict) -> str:
    mode, labels = ctx.mode, assets["labels"]
    m = plan.get("measured", {})
    lines = [f"plan ({plan['mode']}, init {plan['init']}, budget {plan['budget_minutes']:g} min, {plan['cells']} cells: "
             f"{len(plan['variants'])} variants x {len(plan['seeds'])} seeds)",
             f"  {plan['steps']} pretraining steps per cell (batch {mode.batch_size} x {mode.max_length} tokens, "
             f"{m.get('step_seconds', float('nan')):.3f} s/step), evaluation ~{m.get('eval_seconds', 0):.0f} s per cell"]
    if labels:
        lines.append(f"  few-shot: {len(labels['classes'])} classes, k = {', '.join(map(str, mode.shots))} per class, "
                     f"{mode.test_docs} test documents per seed; fine-tuned and linear probe")
    else:
        lines.append("  no document labels: few-shot classification skipped")
    lines.append(f"  link prediction: {assets['linkpred']['queries']} withheld links x "
                 f"{assets['linkpred']['candidates'] + 1} candidates ({assets['graphs']['withheld_pairs']} withheld)")
    return "\n".join(lines)


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
