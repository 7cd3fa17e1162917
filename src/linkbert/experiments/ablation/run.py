"""Planning and running the grid: steps per init from a measured budget, then every cell in turn."""

from __future__ import annotations

import json
import time

from linkbert.errors import ConfigError
from linkbert.experiments.ablation.assets import prepare_assets
from linkbert.experiments.ablation.cell import pretrain_config, run_cell
from linkbert.experiments.ablation.grid import VARIANTS, Context
from linkbert.experiments.ablation.results import write_results
from linkbert.experiments.frame import say
from linkbert.files import write_json


def run_grid(ctx: Context, inits, variants, seeds, budget_minutes: float, keep_models: bool = False) -> dict:
    started = time.time()
    assets = prepare_assets(ctx)
    plan = load_or_make_plan(ctx, inits, variants, seeds, budget_minutes, started)
    write_json(ctx.out / "plan.json", plan)
    say("ablation", describe_plan(plan, ctx, assets))
    cells = [(init, variant, seed) for seed in seeds for init in inits for variant in variants]
    for k, (init, variant, seed) in enumerate(cells, start=1):
        done = (ctx.cell_dir(init, variant, seed) / "result.json").exists()
        if not done:
            say("ablation", f"cell {k}/{len(cells)}: {init} / {variant} / seed {seed}")
        result = run_cell(ctx, init, variant, seed, plan["steps"][init], keep_models=keep_models)
        if not done:
            figures = ", ".join(f"{key} {value:.1f}" for key, value in result["metrics"].items() if value is not None)
            say("ablation", f"  done in {result['pretrain_seconds'] + result['eval_seconds']:.0f} s: {figures}")
        write_results(ctx, plan, assets)
    summary = write_results(ctx, plan, assets)
    say("ablation", f"finished in {(time.time() - started) / 60:.1f} min: {ctx.out / 'results.md'}")
    return summary


# -- the plan --------------------------------------------------------------------------------------

def load_or_make_plan(ctx: Context, inits, variants, seeds, budget_minutes: float, started: float) -> dict:
    """The saved plan, widened to new variants and seeds (its steps are kept: every cell of an
    init stays comparable); else a new one, refused when it leaves too few steps."""
    plan_file = ctx.out / "plan.json"
    if not plan_file.exists():
        plan = make_plan(ctx, inits, variants, seeds, budget_minutes, started)
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
    ``steps.measure_step_seconds``)."""
    from linkbert.experiments.steps import measure_step_seconds as measure

    return measure(ctx, pretrain_config(ctx, init, "linkbert", 0, 100), steps=steps)


def make_plan(ctx: Context, inits, variants, seeds, budget_minutes: float, started: float) -> dict:
    """Steps per init such that the whole grid fits ``budget_minutes`` (counted from ``started``).

    Measured first: seconds per pretraining step of each init, and the evaluation time of a
    cell (from the ``init`` reference cell of the first seed, which is part of the results).
    Every pretraining cell then gets the same pretraining *time*, i.e. the same number of
    steps within an init (equal compute across variants). The plan is saved and reused by a
    resumed grid, so every cell of an init pretrains the same number of steps.
    """
    measured = {init: measure_init(ctx, init, seeds[0]) for init in inits}
    trained = [v for v in variants if VARIANTS[v].pretrain]
    remaining = budget_minutes * 60 - (time.time() - started)
    overhead = 15.0  # model set-up, held-out evaluation and checkpoint of a pretraining run
    eval_total = sum(measured[i]["eval_seconds"] * (len(trained) * len(seeds) + ("init" in variants) * (len(seeds) - 1))
                     for i in inits)
    n_pretrain_cells = len(trained) * len(seeds) * len(inits)
    per_cell = (remaining - eval_total - overhead * n_pretrain_cells) / max(1, n_pretrain_cells)
    steps = {i: min(ctx.mode.max_steps, int(per_cell / measured[i]["step_seconds"])) if per_cell > 0 else 0
             for i in inits}
    return {"mode": ctx.mode_name, "budget_minutes": budget_minutes, "inits": list(inits), "variants": list(variants),
            "seeds": list(seeds), "steps": steps, "pretrain_seconds_per_cell": round(per_cell, 1),
            "measured": measured, "cells": len(inits) * len(variants) * len(seeds),
            "created": time.strftime("%Y-%m-%d %H:%M:%S")}


def measure_init(ctx: Context, init: str, seed: int) -> dict:
    """Seconds per pretraining step of ``init``, and per cell's evaluations (its ``init`` cell of ``seed``)."""
    step_s = measure_step_seconds(ctx, init)
    reference = run_cell(ctx, init, "init", seed, 0)  # its own recorded time, also when it was done before
    eval_seconds = reference["pretrain_seconds"] + reference["eval_seconds"]
    measured = {"step_seconds": round(step_s, 4), "eval_seconds": round(eval_seconds, 1)}
    say("ablation", f"measured {init}: {step_s:.3f} s per pretraining step, "
                    f"{measured['eval_seconds']:.0f} s per evaluation")
    return measured


def describe_plan(plan: dict, ctx: Context, assets: dict) -> str:
    mode = ctx.mode
    qa, cat = assets["qa"], assets["category"]
    lines = [(f"plan ({plan['mode']}, budget {plan['budget_minutes']:g} min, {plan['cells']} cells: "
             f"{len(plan['variants'])} variants x {len(plan['inits'])} inits x {len(plan['seeds'])} seeds)")]
    for init, steps in plan["steps"].items():
        m = plan["measured"].get(init, {})
        lines.append(f"  {init}: {steps} pretraining steps per cell (batch {mode.batch_size} x {mode.max_length} tokens"
                     f", {m.get('step_seconds', float('nan')):.3f} s/step), evaluation ~{m.get('eval_seconds', 0):.0f} s per cell")
    lines.append(f"  QA: {qa['train']} training questions (few-shot {qa['fewshot']}), {qa['test']} test "
                 f"questions, plain and with distractors; max_length {mode.qa_max_length}")
    lines.append("  " + describe_hotpotqa(assets.get("hotpotqa") or {}, mode))
    lines.append(f"  category: {cat['train']} train / {cat['test']} test documents, {len(cat['classes'])} classes "
                 f"(majority baseline {cat['majority_baseline']}%)")
    lines.append(f"  link prediction: {assets['linkpred']['queries']} withheld links x "
                 f"{assets['linkpred']['candidates'] + 1} candidates")
    return "\n".join(lines)


def describe_hotpotqa(hotpot: dict, mode) -> str:
    if not hotpot or hotpot.get("skipped"):
        return f"HotpotQA: skipped ({hotpot.get('skipped', 'no data')})"
    windows = hotpot.get("windows", {})
    types = ", ".join(f"{n} {kind}" for kind, n in hotpot.get("test_types", {}).items())
    return (f"HotpotQA distractor (init minilm only): {hotpot['train']} fine-tuning questions"
            f" ({windows.get('train', '?')} windows) x {mode.hotpot_epochs:g} epoch(s), {hotpot['test']} test questions "
            f"({windows.get('test', '?')} windows; {types}); max_length {mode.qa_max_length}, doc_stride "
            f"{mode.qa_doc_stride}")
