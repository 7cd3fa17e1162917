"""Running the grid: the plan (``plan.py``: steps per init from a measured budget), the masked-LM
first stage when an init needs it, every cell in turn, then the in-grid compute curve's points."""

from __future__ import annotations

import time

from linkbert.experiments.ablation.assets import prepare_assets
from linkbert.experiments.ablation.cell import pretrain_config, run_cell
from linkbert.experiments.ablation.grid import Context
from linkbert.experiments.ablation.plan import CURVE_VARIANTS, describe_plan, load_or_make_plan
from linkbert.experiments.ablation.results import write_results
from linkbert.experiments.first_stage import FIRST_STAGE, first_stage_once
from linkbert.experiments.frame import say
from linkbert.files import write_json


def run_grid(ctx: Context, inits, variants, seeds, budget_minutes: float, keep_models: bool = False, *,
             fewer_seeds: bool = False, optional=()) -> dict:
    """Every cell of the plan (``inits`` x its variants x its seeds, seed by seed), then
    results.md/results.json. The plan may take fewer seeds (``fewer_seeds``) or add ``optional``
    variants and compute-curve points (``plan.py``)."""
    started = time.time()
    assets = prepare_assets(ctx)
    plan = load_or_make_plan(ctx, inits, variants, seeds, budget_minutes, started, fewer_seeds=fewer_seeds,
                             optional=optional)
    write_json(ctx.out / "plan.json", plan)
    say("ablation", describe_plan(plan, ctx, assets))
    if FIRST_STAGE in inits:
        steps = plan["first_stage_steps"]
        first_stage_once(ctx, pretrain_config(ctx, FIRST_STAGE, "linkbert", 0, steps, start="scratch"), steps)
    cells = [(init, variant, seed) for seed in plan["seeds"] for init in inits for variant in plan["variants"]]
    for k, (init, variant, seed) in enumerate(cells, start=1):
        done = (ctx.cell_dir(init, variant, seed) / "result.json").exists()
        if not done:
            say("ablation", f"cell {k}/{len(cells)}: {init} / {variant} / seed {seed}")
        result = run_cell(ctx, init, variant, seed, plan["steps"][init], keep_models=keep_models)
        if not done:
            figures = ", ".join(f"{key} {value:.1f}" for key, value in result["metrics"].items() if value is not None)
            say("ablation", f"  done in {result['pretrain_seconds'] + result['eval_seconds']:.0f} s: {figures}")
        write_results(ctx, plan, assets)
    for init, points in plan.get("curve_steps", {}).items():  # the in-grid curve, after every grid cell
        for steps in points:
            for seed in plan["seeds"]:
                for variant in CURVE_VARIANTS:
                    if not (ctx.cell_dir(init, variant, seed, steps) / "result.json").exists():
                        say("ablation", f"curve {steps} steps: {init} / {variant} / seed {seed}")
                    run_cell(ctx, init, variant, seed, steps, keep_models=keep_models, curve_steps=steps)
                write_results(ctx, plan, assets)
    summary = write_results(ctx, plan, assets)
    say("ablation", f"finished in {(time.time() - started) / 60:.1f} min: {ctx.out / 'results.md'}")
    return summary
