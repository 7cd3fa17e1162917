"""The grid's plan: its costs measured on this device, then steps per cell that fit the budget
(``experiments.budget``), fixed in ``plan.json`` at the first run and kept by a resumed grid.

Measured first, on the device the grid runs on:

* seconds per pretraining step (``steps.measure_step_seconds``: the median of a few real steps);
* a seed's bag-of-words floor;
* one cell's evaluations: with a checkpoint to start from (scratch, MiniLM, a folder), the
  ``init`` cell of the first seed, which is part of the results; with the masked-LM first stage,
  whose model does not exist yet, a **probe**: a cell of ``probe_steps`` steps from scratch in
  ``probe/``, evaluated like every cell (each evaluation timed), which also measures a pretraining
  run's fixed cost (set-up, held-out evaluation, checkpoints). Its figures, of a model that has
  barely trained, are kept in the plan as the evaluations' floor.

The plan is printed before any training: steps per cell, the first stage's steps, each
evaluation's seconds, the compute curve or why there is none, and the expected minutes.
"""

from __future__ import annotations

import json
import shutil
import time

from linkbert.errors import ConfigError
from linkbert.experiments.budget import plan_cells
from linkbert.experiments.frame import device_name, say, seconds_breakdown
from linkbert.experiments.graph.assets import build_fewshot_data
from linkbert.experiments.graph.cell import compute_cell, pretrain_config, run_bow_cell, run_cell
from linkbert.experiments.graph.grid import CURVE_VARIANTS, VARIANTS, Context
from linkbert.experiments.steps import discard_weights

OVERHEAD_SECONDS = 15.0  # per pretraining run, when no probe measured it: set-up, held-out evaluation, checkpoints


def run_seed_floor(ctx: Context, seed: int, classify: bool) -> None:
    """A seed's few-shot sets and its bag-of-words floor, before any model of the seed."""
    if classify:
        build_fewshot_data(ctx, seed)
    run_bow_cell(ctx, seed, classify=classify)


def load_or_make_plan(ctx: Context, variants, seeds, budget_minutes: float, started: float, classify: bool, *,
                      fewer_seeds: bool = False, optional=()) -> dict:
    """The saved plan, widened to new variants and seeds (its steps are kept: every cell stays
    comparable); else a new one, refused when it leaves too few steps. ``fewer_seeds``: the
    seeds were the mode's, so the plan may take fewer (down to its ``min_seeds``);
    ``optional``: variants added only when the budget allows."""
    plan_file = ctx.out / "plan.json"
    if plan_file.exists():
        plan = json.loads(plan_file.read_text())
        check_same_setup(plan, ctx)
        plan.update(variants=sorted(set(plan["variants"]) | set(variants), key=list(VARIANTS).index),
                    seeds=sorted(set(plan["seeds"]) | set(seeds)))
        plan["cells"] = len(plan["variants"]) * len(plan["seeds"])
        say("graph", f"resuming: the plan of {plan['created']} fixes the steps ({plan['steps']})")
    else:
        plan = make_plan(ctx, variants, seeds, budget_minutes, started, classify, fewer_seeds=fewer_seeds,
                         optional=optional)
    if any(VARIANTS[v].pretrain for v in plan["variants"]) and plan["steps"] < ctx.mode.min_steps:
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
    """Seconds per pretraining step on this machine (``steps.measure_step_seconds``); with the
    first stage, of the same architecture from scratch (its checkpoint does not exist yet)."""
    from linkbert.experiments.steps import measure_step_seconds as measure

    return measure(ctx, pretrain_config(ctx, "linkbert", 0, 100, init="scratch" if ctx.first_stage else None))


def measure_costs(ctx: Context, seed: int, classify: bool) -> dict:
    """What the plan rests on, measured here: step, a run's fixed cost, a cell's evaluations, a seed's floor."""
    step_s = measure_step_seconds(ctx)
    floor_started = time.time()
    run_seed_floor(ctx, seed, classify)
    floor_s = time.time() - floor_started
    if ctx.first_stage:
        shutil.rmtree(ctx.probe_dir, ignore_errors=True)  # a probe interrupted before would read back its figures
        probe = compute_cell(ctx, "linkbert", seed, ctx.mode.probe_steps, ctx.probe_dir, classify=classify,
                             minutes=None, init="scratch")
        discard_weights(ctx.probe_dir)
        overhead = max(0.0, probe["pretrain_seconds"] - probe["steps"] * step_s)
        measured = {"eval_seconds": probe["eval_seconds"], "run_overhead_seconds": round(overhead, 1),
                    "evaluation_seconds": probe["evaluation_seconds"],
                    "probe": {"steps": probe["steps"], "metrics": probe["metrics"]}}
    else:
        reference = run_cell(ctx, "init", seed, 0, classify=classify)
        measured = {"eval_seconds": round(reference["pretrain_seconds"] + reference["eval_seconds"], 1),
                    "run_overhead_seconds": OVERHEAD_SECONDS,
                    "evaluation_seconds": reference.get("evaluation_seconds", {})}
    return {"step_seconds": round(step_s, 4), "floor_seconds": round(floor_s, 1), **measured}


def make_plan(ctx: Context, variants, seeds, budget_minutes: float, started: float, classify: bool, *,
              fewer_seeds: bool = False, optional=()) -> dict:
    """Steps per cell such that the whole grid fits ``budget_minutes`` (counted from ``started``):
    every pretraining cell the same share of what the measured costs leave (equal compute)."""
    mode = ctx.mode
    measured = measure_costs(ctx, seeds[0], classify)
    trained = [v for v in variants if VARIANTS[v].pretrain]
    curve = mode.curve_fractions if set(CURVE_VARIANTS) <= set(trained) else ()
    plan = plan_cells(budget_s=budget_minutes * 60, spent_s=time.time() - started,
                      step_s=measured["step_seconds"], run_overhead_s=measured["run_overhead_seconds"],
                      eval_s=measured["eval_seconds"], runs_per_seed=len(trained),
                      evaluations_per_seed=len(trained) + ("init" in variants),
                      done_evaluations=int("init" in variants and not ctx.first_stage), seeds=len(seeds),
                      min_seeds=mode.min_seeds if fewer_seeds else None,
                      optional={v: 1 for v in optional if v not in variants}, curve_fractions=curve,
                      curve_runs_per_seed=len(CURVE_VARIANTS),
                      first_stage_share=mode.first_stage_share if ctx.first_stage else 0.0,
                      fixed_per_seed_s=measured["floor_seconds"], target_steps=mode.target_steps or mode.min_steps,
                      max_steps=mode.max_steps, extras_max_cost=mode.curve_max_cost)
    steps = plan["steps"]
    chosen = [v for v in VARIANTS if v in variants or v in plan["optional"]]
    points = sorted({max(1, round(f * steps)) for f in curve} - {steps}) if plan["curve"] else []
    say("graph", f"measured: {measured['step_seconds']:.3f} s per pretraining step, {measured['eval_seconds']:.0f} s "
                 f"per cell's evaluation, {measured['floor_seconds']:.0f} s per seed's floor")
    return {**setup(ctx), "budget_minutes": budget_minutes, "variants": chosen, "seeds": list(seeds[:plan["seeds"]]),
            "steps": steps, "pretrain_seconds_per_cell": round(plan["pretrain_seconds_per_cell"], 1),
            "first_stage_steps": plan["first_stage_steps"] if ctx.first_stage else None,
            "curve_steps": points, "notes": plan["notes"], "expected_minutes": round(plan["expected_seconds"] / 60, 2),
            "measured": measured, "device": device_name(ctx.device), "cells": len(chosen) * plan["seeds"],
            "created": time.strftime("%Y-%m-%d %H:%M:%S")}


def describe_plan(plan: dict, ctx: Context, assets: dict) -> str:
    mode, labels = ctx.mode, assets["labels"]
    m = plan.get("measured", {})
    tokens = plan["steps"] * mode.batch_size * mode.max_length
    lines = [f"plan ({plan['mode']}, init {plan['init']}, {plan.get('device', ctx.device)}, budget "
             f"{plan['budget_minutes']:g} min, {plan['cells']} cells: {len(plan['variants'])} variants "
             f"({', '.join(plan['variants'])}) x {len(plan['seeds'])} seeds)",
             f"  {plan['steps']} pretraining steps per cell (batch {mode.batch_size} x {mode.max_length} tokens, <= "
             f"{tokens:,} tokens; {m.get('step_seconds', float('nan')):.3f} s/step), evaluation "
             f"~{m.get('eval_seconds', 0):.0f} s per cell" + seconds_breakdown(m.get("evaluation_seconds"))]
    if plan.get("first_stage_steps") is not None:
        lines.append(f"  first stage: {plan['first_stage_steps']} steps of masked LM only ({mode.scratch_preset}, "
                     "the corpus without its links), shared by every variant and seed")
    if labels:
        lines.append(f"  few-shot: {len(labels['classes'])} classes, k = {', '.join(map(str, mode.shots))} per class, "
                     f"{mode.test_docs} test documents per seed; fine-tuned and linear probe")
    else:
        lines.append("  no document labels: few-shot classification skipped")
    lines.append(f"  link prediction: {assets['linkpred']['queries']} withheld links x "
                 f"{assets['linkpred']['candidates'] + 1} candidates ({assets['graphs']['withheld_pairs']} withheld)")
    if plan.get("curve_steps"):
        lines.append(f"  compute curve: linkbert and bert also at {', '.join(map(str, plan['curve_steps']))} steps "
                     f"(and the grid's {plan['steps']})")
    lines += [f"  {note}" for note in plan.get("notes", [])]
    if plan.get("expected_minutes") is not None:
        lines.append(f"  expected: {plan['expected_minutes']:.1f} min of the {plan['budget_minutes']:g}")
    return "\n".join(lines)

