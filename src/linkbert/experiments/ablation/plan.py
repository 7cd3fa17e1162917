"""The grid's plan: its costs measured on this device per init, then steps per init such that
the grid fits the budget (``experiments.budget``), fixed in ``plan.json`` at the first run.

Measured first, for each init: seconds per pretraining step, and one cell's evaluations. With a
checkpoint to start from (scratch, MiniLM) the evaluations are those of the init's ``init`` cell
of the first seed, which is part of the results; with the masked-LM first stage, whose model does
not exist yet, a **probe**: a cell of ``probe_steps`` steps from scratch in ``probe/``, evaluated
like every cell (each evaluation timed), which also measures a pretraining run's fixed cost.

Every pretraining cell then gets the same pretraining *time*, i.e. the same steps within an init
(equal compute); the plan is printed before any training.
"""

from __future__ import annotations

import json
import shutil
import time

from linkbert.errors import ConfigError
from linkbert.experiments.ablation.cell import compute_cell, pretrain_config, run_cell
from linkbert.experiments.ablation.grid import VARIANTS, Context
from linkbert.experiments.budget import plan_cells
from linkbert.experiments.first_stage import FIRST_STAGE
from linkbert.experiments.frame import device_name, say, seconds_breakdown
from linkbert.experiments.steps import discard_weights

OVERHEAD_SECONDS = 15.0  # per pretraining run, when no probe measured it: set-up, held-out evaluation, checkpoint
CURVE_VARIANTS = ("linkbert", "bert")


def load_or_make_plan(ctx: Context, inits, variants, seeds, budget_minutes: float, started: float, *,
                      fewer_seeds: bool = False, optional=()) -> dict:
    """The saved plan, widened to new variants and seeds (its steps are kept: every cell of an
    init stays comparable); else a new one, refused when it leaves too few steps. ``fewer_seeds``:
    the seeds were the mode's, so the plan may take fewer (down to its ``min_seeds``);
    ``optional``: variants added only when the budget allows."""
    plan_file = ctx.out / "plan.json"
    if not plan_file.exists():
        plan = make_plan(ctx, inits, variants, seeds, budget_minutes, started, fewer_seeds=fewer_seeds,
                         optional=optional)
        too_few = {i: s for i, s in plan["steps"].items() if s < ctx.mode.min_steps}
        if too_few:
            raise ConfigError(f"the budget leaves too few pretraining steps per cell ({too_few}; minimum "
                              f"{ctx.mode.min_steps}): raise --budget-minutes or lower --seeds / --inits / --variants")
        return plan
    plan = json.loads(plan_file.read_text())
    if plan["mode"] != ctx.mode_name:
        raise ConfigError(f"{ctx.out} holds a {plan['mode']} grid; use another --out for mode {ctx.mode_name}")
    missing = [i for i in inits if i not in plan["steps"]]
    if missing:
        raise ConfigError(f"the saved plan has no steps for init(s) {', '.join(missing)}: "
                          "use another --out, or delete plan.json and the cells to re-plan")
    plan.update(variants=sorted(set(plan["variants"]) | set(variants), key=list(VARIANTS).index),
                seeds=sorted(set(plan["seeds"]) | set(seeds)))
    plan["cells"] = len(plan["inits"]) * len(plan["variants"]) * len(plan["seeds"])
    say("ablation", f"resuming: the plan of {plan['created']} fixes the steps ({plan['steps']})")
    return plan


def measure_step_seconds(ctx: Context, init: str, steps: int = 3) -> float:
    """Seconds per pretraining step of ``init`` on this machine (median of ``steps`` after a warm-up;
    ``steps.measure_step_seconds``); the first stage's from scratch (its checkpoint does not exist yet)."""
    from linkbert.experiments.steps import measure_step_seconds as measure

    start = "scratch" if init == FIRST_STAGE else None
    return measure(ctx, pretrain_config(ctx, init, "linkbert", 0, 100, start=start), steps=steps)


def measure_init(ctx: Context, init: str, seed: int) -> dict:
    """Seconds per pretraining step of ``init``, a run's fixed cost, and a cell's evaluations."""
    step_s = measure_step_seconds(ctx, init)
    if init == FIRST_STAGE:
        shutil.rmtree(ctx.probe_dir, ignore_errors=True)  # a probe interrupted before would read back its figures
        probe = compute_cell(ctx, init, "linkbert", seed, ctx.mode.probe_steps, ctx.probe_dir, start="scratch")
        discard_weights(ctx.probe_dir)
        measured = {"eval_seconds": probe["eval_seconds"],
                    "run_overhead_seconds": round(max(0.0, probe["pretrain_seconds"] - probe["steps"] * step_s), 1),
                    "evaluation_seconds": probe["evaluation_seconds"],
                    "probe": {"steps": probe["steps"], "metrics": probe["metrics"]}}
    else:
        reference = run_cell(ctx, init, "init", seed, 0)  # its own recorded time, also when it was done before
        measured = {"eval_seconds": round(reference["pretrain_seconds"] + reference["eval_seconds"], 1),
                    "run_overhead_seconds": OVERHEAD_SECONDS,
                    "evaluation_seconds": reference.get("evaluation_seconds", {})}
    say("ablation", f"measured {init}: {step_s:.3f} s per pretraining step, "
                    f"{measured['eval_seconds']:.0f} s per evaluation")
    return {"step_seconds": round(step_s, 4), **measured}


def make_plan(ctx: Context, inits, variants, seeds, budget_minutes: float, started: float, *,
              fewer_seeds: bool = False, optional=()) -> dict:
    """Steps per init such that the whole grid fits ``budget_minutes`` (counted from ``started``)."""
    mode = ctx.mode
    measured = {init: measure_init(ctx, init, seeds[0]) for init in inits}
    trained = [v for v in variants if VARIANTS[v].pretrain]
    n = len(inits)
    has_init = "init" in variants
    curve = mode.curve_fractions if set(CURVE_VARIANTS) <= set(trained) else ()
    plan = plan_cells(
        budget_s=budget_minutes * 60, spent_s=time.time() - started,
        step_s=max(m["step_seconds"] for m in measured.values()),
        run_overhead_s=sum(m["run_overhead_seconds"] for m in measured.values()) / n,
        eval_s=sum(m["eval_seconds"] for m in measured.values()) / n,
        runs_per_seed=len(trained) * n, evaluations_per_seed=(len(trained) + has_init) * n,
        done_evaluations=has_init * sum(init != FIRST_STAGE for init in inits), seeds=len(seeds),
        min_seeds=mode.min_seeds if fewer_seeds else None, optional={v: n for v in optional if v not in variants},
        curve_fractions=curve, curve_runs_per_seed=len(CURVE_VARIANTS) * n,
        first_stage_share=mode.first_stage_share if FIRST_STAGE in inits else 0.0, target_steps=mode.target_steps or mode.min_steps,
        max_steps=mode.max_steps, extras_max_cost=mode.curve_max_cost)
    per_cell = plan["pretrain_seconds_per_cell"]
    steps = {i: min(mode.max_steps, int(per_cell / measured[i]["step_seconds"])) for i in inits}
    first_steps = (min(mode.max_steps, int(plan["first_stage_seconds"] / measured[FIRST_STAGE]["step_seconds"]))
                   if FIRST_STAGE in inits else None)
    chosen = [v for v in VARIANTS if v in variants or v in plan["optional"]]
    points = {i: sorted({max(1, round(f * s)) for f in curve} - {s}) for i, s in steps.items()} if plan["curve"] else {}
    return {"mode": ctx.mode_name, "budget_minutes": budget_minutes, "inits": list(inits), "variants": chosen,
            "seeds": list(seeds[:plan["seeds"]]), "steps": steps, "first_stage_steps": first_steps,
            "curve_steps": points, "pretrain_seconds_per_cell": round(per_cell, 1), "notes": plan["notes"],
            "expected_minutes": round(plan["expected_seconds"] / 60, 2), "measured": measured,
            "device": device_name(ctx.device), "evaluations": list(mode.evaluations),
            "tokens_per_step": mode.batch_size * mode.max_length,
            "cells": len(inits) * len(chosen) * plan["seeds"], "created": time.strftime("%Y-%m-%d %H:%M:%S")}


def describe_plan(plan: dict, ctx: Context, assets: dict) -> str:
    mode = ctx.mode
    qa, cat = assets["qa"], assets["category"]
    lines = [(f"plan ({plan['mode']}, {plan.get('device', ctx.device)}, budget {plan['budget_minutes']:g} min, "
              f"{plan['cells']} cells: {len(plan['variants'])} variants ({', '.join(plan['variants'])}) x "
              f"{len(plan['inits'])} inits x {len(plan['seeds'])} seeds)")]
    for init, steps in plan["steps"].items():
        m = plan["measured"].get(init, {})
        tokens = steps * mode.batch_size * mode.max_length
        lines.append(f"  {init}: {steps} pretraining steps per cell (batch {mode.batch_size} x {mode.max_length} tokens"
                     f", <= {tokens:,} tokens; {m.get('step_seconds', float('nan')):.3f} s/step), evaluation "
                     f"~{m.get('eval_seconds', 0):.0f} s per cell" + seconds_breakdown(m.get("evaluation_seconds")))
    if plan.get("first_stage_steps") is not None:
        lines.append(f"  first stage: {plan['first_stage_steps']} steps of masked LM only ({mode.scratch_preset}, "
                     "Wikispeedia without its links), shared by every variant and seed")
    if not qa.get("skipped"):
        lines.append(f"  QA: {qa['train']} training questions (few-shot {qa['fewshot']}), {qa['test']} test "
                     f"questions, plain and with distractors; max_length {mode.qa_max_length}")
    lines.append("  " + describe_hotpotqa(assets.get("hotpotqa") or {}, mode))
    if not cat.get("skipped"):
        lines.append(f"  category: {cat['train']} train / {cat['test']} test documents, {len(cat['classes'])} classes "
                     f"(majority baseline {cat['majority_baseline']}%)")
    lines.append(f"  link prediction: {assets['linkpred']['queries']} withheld links x "
                 f"{assets['linkpred']['candidates'] + 1} candidates")
    for init, points in plan.get("curve_steps", {}).items():
        lines.append(f"  compute curve ({init}): linkbert and bert also at {', '.join(map(str, points))} steps")
    lines += [f"  {note}" for note in plan.get("notes", [])]
    if plan.get("expected_minutes") is not None:
        lines.append(f"  expected: {plan['expected_minutes']:.1f} min of the {plan['budget_minutes']:g}")
    return "\n".join(lines)


def describe_hotpotqa(hotpot: dict, mode) -> str:
    if not hotpot or hotpot.get("skipped"):
        return f"HotpotQA: skipped ({hotpot.get('skipped', 'no data')})"
    windows = hotpot.get("windows", {})
    types = ", ".join(f"{n} {kind}" for kind, n in hotpot.get("test_types", {}).items())
    return (f"HotpotQA distractor (inits minilm, first-stage): {hotpot['train']} fine-tuning questions"
            f" ({windows.get('train', '?')} windows) x {mode.hotpot_epochs:g} epoch(s), {hotpot['test']} test "
            "questions "
            f"({windows.get('test', '?')} windows; {types}); max_length {mode.qa_max_length}, doc_stride "
            f"{mode.qa_doc_stride}")

