"""One cell of the grid (init x variant x seed): pretrain, export, fine-tune and score it.

Every step keeps its output in the cell's folder, so an interrupted cell resumes from its last
pretraining checkpoint and redoes only the evaluations it lacks; ``result.json``, written last,
marks a finished cell, which is never recomputed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from linkbert.experiments.ablation.grid import VARIANTS, Context
from linkbert.experiments.first_stage import FIRST_STAGE
from linkbert.experiments.frame import timed
from linkbert.experiments.steps import (cell_once, export_once, finetune_once, link_prediction_once,
                                        load_pretraining_model, pretrain_once, pretrain_settings)


def run_cell(ctx: Context, init: str, variant: str, seed: int, steps: int, keep_models: bool = False,
             curve_steps: int | None = None) -> dict:
    """One cell of the grid, skipped when its ``result.json`` exists (never recomputed);
    ``curve_steps``: a point of the in-grid compute curve (its folder, its steps)."""
    folder = ctx.cell_dir(init, variant, seed, curve_steps)
    return cell_once(folder, lambda: compute_cell(ctx, init, variant, seed, steps, folder), keep_models=keep_models)


def compute_cell(ctx: Context, init: str, variant: str, seed: int, steps: int, folder: Path, *,
                 start: str | None = None) -> dict:
    """Pretrain and evaluate one cell in ``folder``; its result (``start``: another start than
    the init's, for the planner's probe)."""
    started = time.time()
    checkpoint, summary = pretrain_cell(ctx, init, variant, seed, steps, folder / "pretrain", start=start)
    pretrained = time.time()
    seconds: dict = {}
    metrics = evaluate_cell(ctx, init, checkpoint, folder, seed, seconds=seconds)
    evaluation = summary.get("eval") or {}
    metrics["heldout_mlm_acc"] = 100 * evaluation["mlm_accuracy"] if "mlm_accuracy" in evaluation else None
    metrics["heldout_relation_acc"] = (100 * evaluation["relation_accuracy"]
                                       if "relation_accuracy" in evaluation else None)
    return {"init": init, "variant": variant, "seed": seed, "steps": summary.get("step", 0),
            "pretrain_seconds": round(pretrained - started, 1), "eval_seconds": round(time.time() - pretrained, 1),
            "evaluation_seconds": seconds, "hotpotqa_seconds": _seconds(folder / "hotpotqa" / "metrics.json"),
            "metrics": metrics,
            "pretrain_summary": {k: summary.get(k) for k in ("step", "stop_reason", "tokens", "train_seconds")}}


def _seconds(metrics_file: Path) -> float | None:
    """The wall-clock seconds a fine-tuning run recorded (None when it did not run)."""
    return json.loads(metrics_file.read_text()).get("seconds") if metrics_file.exists() else None


# -- pretraining -----------------------------------------------------------------------------------

def trained_here(init: str) -> bool:
    """A small model this grid trains (from scratch or its first stage): the ``*_scratch`` learning rates."""
    return init in ("scratch", FIRST_STAGE)


def pretrain_config(ctx: Context, init: str, variant: str, seed: int, steps: int, *, start: str | None = None):
    """The cell's run: the same preset, batch, steps and schedule for every variant of an init
    (equal compute). ``start``: another start than the init's (``scratch``: the planner's probes,
    which run before the first stage exists, on the same architecture)."""
    v, mode = VARIANTS[variant], ctx.mode
    return pretrain_settings(
        preset=mode.scratch_preset, init=start or ctx.init_source(init), objective=v.objective,
        graph=str(ctx.graph_dir(v.graph).resolve()) if v.graph else "", linked_sampling=v.linked_sampling,
        linked_segment="first", max_length=mode.max_length, batch_size=mode.batch_size, max_steps=max(1, steps),
        lr=mode.lr_scratch if trained_here(init) else mode.lr_continued, warmup_steps=max(1, steps // 10),
        heldout_fraction=0.01, eval_pairs=mode.eval_pairs, seed=seed, save_every=max(25, steps // 4),
        keep_checkpoints=1, log_every=max(1, steps // 10), progress=False, tracker="none", precision="auto",
        compile=mode.compile, max_predictions=mode.max_predictions, num_workers=mode.num_workers)


def pretrain_cell(ctx: Context, init: str, variant: str, seed: int, steps: int, folder: Path, *,
                  start: str | None = None) -> tuple[Path, dict]:
    """Pretrain (or, for ``init``, save the initial model); returns (checkpoint folder, summary)."""
    config = pretrain_config(ctx, init, variant, seed, steps, start=start)
    return pretrain_once(ctx, config, folder, initial_only=not VARIANTS[variant].pretrain)


# -- evaluation ------------------------------------------------------------------------------------

QA_KEYS = ("qa_f1", "qa_em", "qa_distract_f1", "qa_distract_drop", "fewshot_f1", "fewshot_distract_f1")


def evaluate_cell(ctx: Context, init: str, checkpoint: Path, folder: Path, seed: int,
                  seconds: dict | None = None) -> dict:
    """Every evaluation of the mode (``Mode.evaluations``) of one pretrained model; each
    sub-result is kept, so a restart redoes only what is missing; ``seconds``, when given, gets
    each evaluation's wall-clock time (what the planner's probe measures). An evaluation the
    mode skips leaves its figures None."""
    metrics: dict = {**dict.fromkeys(QA_KEYS), "category_acc": None}
    model_dir = export_once(ctx, checkpoint, folder / "model")
    if ctx.evaluates("qa"):
        with timed(seconds, "squad"):
            qa, fewshot = finetune_qa(ctx, init, model_dir, folder, seed)
        metrics.update({"qa_f1": qa["test"]["main"], "qa_em": qa["test"]["exact_match"],
                        "qa_distract_f1": qa["dev"]["main"], "qa_distract_drop": qa["test"]["main"] - qa["dev"]["main"],
                        "fewshot_f1": fewshot["test"]["main"], "fewshot_distract_f1": fewshot["dev"]["main"]})
    if ctx.evaluates("category"):
        with timed(seconds, "category"):
            category = finetune(ctx, model_dir, "seqcls", ctx.eval_dir / "category", folder / "category", seed,
                                epochs=ctx.mode.cat_epochs, lr=ctx.mode.cat_lr, max_length=ctx.mode.max_length,
                                warmup_ratio=0.1)
        metrics["category_acc"] = category["test"]["main"]
    head = emb = None
    if ctx.evaluates("linkpred"):
        with timed(seconds, "link_prediction"):
            linkpred = link_prediction(ctx, checkpoint, folder / "linkpred.json")
        head, emb = linkpred["head"], linkpred["embedding"]
    metrics.update({"linkpred_mrr": None if head is None else 100 * head["mrr"],
                    "linkpred_hits1": None if head is None else 100 * head["hits1"],
                    "linkpred_emb_mrr": None if emb is None else 100 * emb["mrr"],
                    "linkpred_emb_hits1": None if emb is None else 100 * emb["hits1"]})
    with timed(seconds, "hotpotqa"):
        metrics.update(hotpotqa_metrics(ctx, init, model_dir, folder / "hotpotqa", seed))
    return metrics


def qa_lr(ctx: Context, init: str) -> float:
    return ctx.mode.qa_lr_scratch if trained_here(init) and ctx.mode.qa_lr_scratch else ctx.mode.qa_lr


def finetune_qa(ctx: Context, init: str, model_dir: Path, folder: Path, seed: int) -> tuple[dict, dict]:
    """The metrics of SQuAD QA and few-shot QA fine-tuned from ``model_dir``."""
    mode = ctx.mode
    qa_data = ctx.eval_dir / "qa"
    fewshot_n = json.loads((qa_data / "stats.json").read_text())["fewshot"]
    qa_settings = {"lr": qa_lr(ctx, init), "max_length": mode.qa_max_length, "doc_stride": mode.qa_doc_stride,
                   "warmup_ratio": 0.1}
    qa = finetune(ctx, model_dir, "qa", qa_data, folder / "qa", seed, epochs=mode.qa_epochs, **qa_settings)
    fewshot = finetune(ctx, model_dir, "qa", qa_data, folder / "qa-fewshot", seed, epochs=mode.fewshot_epochs,
                       max_train_examples=fewshot_n, **qa_settings)
    return qa, fewshot


HOTPOT_KEYS = ("hotpot_f1", "hotpot_em", "hotpot_bridge_f1", "hotpot_bridge_em",
               "hotpot_comparison_f1", "hotpot_comparison_em")


def runs_hotpotqa(ctx: Context, init: str) -> bool:
    """HotpotQA is fine-tuned and scored for the inits that start from a trained model (MiniLM,
    the first stage: a from-scratch model of a few hundred steps cannot learn multi-hop QA in a
    cell's budget), when the mode evaluates it and its data was built (the input file was there)."""
    return (init != "scratch" and ctx.evaluates("hotpotqa")
            and (ctx.eval_dir / "hotpotqa" / "stats.json").exists())


def hotpotqa_metrics(ctx: Context, init: str, model_dir: Path, out: Path, seed: int) -> dict:
    """HotpotQA distractor EM and F1 (overall, bridge, comparison) of ``model_dir`` fine-tuned on
    ``eval/hotpotqa``; all None when this init skips it. A finished run is read back."""
    if not runs_hotpotqa(ctx, init):
        return dict.fromkeys(HOTPOT_KEYS)
    mode = ctx.mode
    result = finetune(ctx, model_dir, "qa", ctx.eval_dir / "hotpotqa", out, seed, epochs=mode.hotpot_epochs,
                      lr=qa_lr(ctx, init), max_length=mode.qa_max_length, doc_stride=mode.qa_doc_stride,
                      warmup_ratio=0.1)
    test = result["test"]
    by_type = test.get("by_type", {})
    figures = {"hotpot_f1": test["f1"], "hotpot_em": test["exact_match"]}
    for kind in ("bridge", "comparison"):
        scores = by_type.get(kind) or {}
        figures[f"hotpot_{kind}_f1"], figures[f"hotpot_{kind}_em"] = scores.get("f1"), scores.get("exact_match")
    return figures


def finetune(ctx: Context, model_dir: Path, task: str, data: Path, out: Path, seed: int, **settings) -> dict:
    """One fine-tuning run's metrics (``steps.finetune_once``) at the grid's batch sizes, read
    back when it finished before."""
    return finetune_once(model_dir, task, data, out, seed=seed, device=ctx.device, batch_size=ctx.mode.ft_batch_size,
                         eval_batch_size=ctx.mode.eval_batch_size, **settings)


def link_prediction(ctx: Context, checkpoint: Path, path: Path) -> dict:
    """Zero-shot link prediction of the pretraining checkpoint on the withheld links, kept in
    ``path`` (``steps.link_prediction_once``; the checkpoint is loaded only when it is not)."""
    if path.exists():
        return json.loads(path.read_text())
    queries = json.loads(ctx.linkpred_file.read_text())["queries"]
    return link_prediction_once(load_pretraining_model(checkpoint, ctx.device), ctx.corpus(), queries, path,
                                max_length=ctx.mode.max_length, device=ctx.device, batch_size=ctx.mode.eval_batch_size)
