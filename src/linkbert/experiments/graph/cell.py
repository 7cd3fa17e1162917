"""One cell of the benchmark (variant x seed, or a compute-curve point): pretrain, then evaluate.

Every step keeps its output in the cell's folder, so an interrupted cell resumes from its last
pretraining checkpoint and redoes only the evaluations it lacks; ``result.json``, written last,
marks a finished cell, which is never recomputed. The bag-of-words floor is a cell of its own
(``cells/bow/seed-<s>``), computed once per seed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from linkbert.experiments.first_stage import trained_checkpoint
from linkbert.experiments.graph import evaluate
from linkbert.experiments.graph.grid import BOW, VARIANTS, Context
from linkbert.experiments.steps import cell_once, pretrain_once, pretrain_settings
from linkbert.files import write_json


def run_cell(ctx: Context, variant: str, seed: int, steps: int, *, classify: bool, minutes: float | None = None,
             keep_models: bool = False, curve_steps: int | None = None) -> dict:
    """One cell, skipped when its ``result.json`` exists (never recomputed). ``minutes``: a point
    of ``--curve``; ``curve_steps``: a point of the in-grid compute curve (its folder, its steps)."""
    folder = ctx.cell_dir(variant, seed, minutes, curve_steps=curve_steps)
    return cell_once(folder, lambda: compute_cell(ctx, variant, seed, steps, folder, classify=classify,
                                                  minutes=minutes), keep_models=keep_models)


def compute_cell(ctx: Context, variant: str, seed: int, steps: int, folder: Path, *, classify: bool,
                 minutes: float | None, init: str | None = None) -> dict:
    """Pretrain and evaluate one cell in ``folder``; its result (``init``: another start than the
    grid's, for the planner's probe)."""
    started = time.time()
    checkpoint, summary = pretrain_cell(ctx, variant, seed, steps, folder / "pretrain", init=init)
    pretrained = time.time()
    seconds: dict = {}
    metrics = evaluate.evaluate_model(ctx, checkpoint, folder, seed, classify, seconds=seconds)
    metrics.update(heldout_figures(summary))
    return {"variant": variant, "seed": seed, "minutes": minutes, "steps": summary.get("step", 0),
            "pretrain_seconds": round(pretrained - started, 1), "eval_seconds": round(time.time() - pretrained, 1),
            "evaluation_seconds": seconds, "metrics": metrics,
            "pretrain_summary": {k: summary.get(k) for k in ("step", "stop_reason", "tokens", "train_seconds")}}


def heldout_figures(summary: dict) -> dict:
    """The pretraining run's own held-out figures in %: MLM accuracy, relation accuracy (None
    where the run has none): what says whether a cell learned at all (``experiments.paired``)."""
    held_out = summary.get("eval") or {}
    return {"heldout_mlm_acc": 100 * held_out["mlm_accuracy"] if "mlm_accuracy" in held_out else None,
            "heldout_relation_acc": (100 * held_out["relation_accuracy"] if "relation_accuracy" in held_out
                                     else None)}


def run_bow_cell(ctx: Context, seed: int, *, classify: bool) -> dict:
    """The bag-of-words floor of one seed (``cells/bow/seed-<s>/result.json``), once."""
    folder = ctx.cell_dir(BOW, seed)
    if (folder / "result.json").exists():
        return json.loads((folder / "result.json").read_text())
    started = time.time()
    metrics = evaluate.bow_metrics(ctx, seed, classify)
    result = {"variant": BOW, "seed": seed, "minutes": None, "steps": 0, "pretrain_seconds": 0.0,
              "eval_seconds": round(time.time() - started, 1), "metrics": metrics}
    write_json(folder / "result.json", result)
    return result


# -- pretraining -------------------------------------------------------------------------------------

def pretrain_config(ctx: Context, variant: str, seed: int, steps: int, *, init: str | None = None):
    """The variant's run: the same init, batch, steps and schedule for every variant of a grid
    (equal compute); only the objective and the graph (never one with a withheld pair) differ.
    ``init``: another start than the grid's (``scratch``: the planner's probes, which run before
    the first stage exists, on the same architecture)."""
    v, mode = VARIANTS[variant], ctx.mode
    graph = ctx.graph_dir(v.graph or "links")
    return pretrain_settings(
        preset=mode.scratch_preset, init=init or init_source(ctx), objective=v.objective, graph=str(graph.resolve()),
        linked_sampling=v.linked_sampling, linked_segment="first", max_length=mode.max_length,
        batch_size=mode.batch_size, max_steps=max(1, steps),
        lr=mode.lr_scratch if ctx.trained_here else mode.lr_continued,
        warmup_steps=max(1, steps // 10), heldout_fraction=0.01, eval_pairs=mode.eval_pairs, seed=seed,
        save_every=max(25, steps // 2), keep_checkpoints=1, log_every=max(1, steps // 10), progress=False,
        tracker="none", precision="auto", compile=mode.compile, max_predictions=mode.max_predictions,
        num_workers=mode.num_workers)


def init_source(ctx: Context) -> str:
    """What the variants start from: ``scratch``, a checkpoint folder, or the trained first stage's checkpoint."""
    if not ctx.first_stage:
        return ctx.init_source
    return trained_checkpoint(ctx)


def pretrain_cell(ctx: Context, variant: str, seed: int, steps: int, folder: Path, *,
                  init: str | None = None) -> tuple[Path, dict]:
    """Pretrain (resuming the run's last checkpoint), or for ``init`` save the initial model;
    returns (checkpoint folder, summary)."""
    return pretrain_once(ctx, pretrain_config(ctx, variant, seed, steps, init=init), folder,
                         initial_only=not VARIANTS[variant].pretrain)
