"""Stages 2 and 3: LinkBERT pretrained for ``--steps`` (a fixed number: the same model on a busy
machine as on an idle one) or, with ``--budget-minutes``, for a wall-clock budget (its
``max_steps`` measured so that the learning-rate schedule ends with the budget: the steps then
depend on the machine's speed and load) and, with ``--baseline bert``, BERT for the same steps
from the same seed; then each run's held-out evaluation in one line, and a plain word when a
model has not learned anything measurable yet (``figures.not_learned``)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from linkbert.quickstart.config import QuickstartConfig
from linkbert.quickstart.output import BASELINE_FOLDER
from linkbert.quickstart.pipeline import (
    bert_baseline_settings,
    pretrain_run,
    pretrain_settings,
    step_seconds,
)
from linkbert.quickstart.report import duration

OBJECTIVE_NAMES = {"linkbert": "LinkBERT", "bert": "BERT"}


def linkbert_settings(config: QuickstartConfig, max_steps: int):
    """LinkBERT's run of ``max_steps``; the BERT baseline's is this with the objective (and steps) replaced."""
    return pretrain_settings(preset=config.preset, max_length=config.max_length, batch_size=config.batch_size,
                             lr=config.lr, max_steps=max_steps, eval_pairs=config.eval_pairs, evals=config.evals,
                             seed=config.seed, budget_minutes=config.budget_minutes)


def budget_steps(config: QuickstartConfig, data: Path) -> int:
    """``--steps``; with ``--budget-minutes``, the ``max_steps`` that fit the budget: measure a
    step, size the schedule to end with it."""
    if not config.budget_minutes:
        print(f"{config.steps} steps of {config.batch_size} pairs (a fixed number: the same model on any machine, "
              "busy or idle; --budget-minutes trains for a time instead)", flush=True)
        return config.steps
    step_s = step_seconds(linkbert_settings(config, 10), data)
    eval_share = 0.1  # held-out evaluations and checkpoints, measured at about this share of the budget
    max_steps = max(2, math.floor(config.budget_minutes * 60 * (1 - eval_share) / step_s))
    print(f"one step of {config.batch_size} pairs takes {step_s:.2f} s here: {max_steps} steps fit the budget (on "
          "a busy machine fewer: the result depends on the machine's load)", flush=True)
    return max_steps


def pretrain_models(config: QuickstartConfig, out: Path) -> dict[str, dict]:
    """``{objective: run summary}``: LinkBERT's run into ``pretrain/`` and, with ``--baseline
    bert``, BERT's into ``pretrain-bert/``: the same settings and seed (hence the same held-out
    documents and the same initial encoder) and the steps LinkBERT took, so only the objective
    differs and a difference between them is what the pairs taught."""
    linkbert = linkbert_settings(config, budget_steps(config, out / "data"))
    shutil.rmtree(out / BASELINE_FOLDER, ignore_errors=True)  # this run's, or a previous run's baseline
    summaries = {"linkbert": _pretrain_one(config, linkbert, out / "data", out / "pretrain")}
    if config.baseline == "bert":
        steps = summaries["linkbert"]["step"]
        if steps < linkbert.max_steps:  # a busy machine: the budget stopped LinkBERT early
            print(f"the budget stopped LinkBERT at step {steps} of {linkbert.max_steps}: BERT trains {steps} steps "
                  f"too, its learning rate decaying to 0 at step {steps}", flush=True)
        bert = bert_baseline_settings(linkbert, steps)
        summaries["bert"] = _pretrain_one(config, bert, out / "data", out / BASELINE_FOLDER)
    return summaries


def _pretrain_one(config: QuickstartConfig, run_settings, data: Path, run_dir: Path) -> dict:
    if config.baseline != "none":
        print(f"pretraining {OBJECTIVE_NAMES[run_settings.objective]} ({_objective_text(run_settings.objective)}), "
              f"{run_settings.max_steps} steps, into {run_dir}", flush=True)
    return pretrain_run(run_settings, data, run_dir)


def _objective_text(objective: str) -> str:
    return {"linkbert": "MLM + document relation prediction: contiguous, random or linked",
            "bert": "MLM + next-sentence prediction: contiguous or random"}[objective]


def pretrain_stage_line(config: QuickstartConfig) -> str:
    length = f"a {duration(config.budget_minutes * 60)} budget" if config.budget_minutes else f"{config.steps} steps"
    if config.baseline == "bert":
        return (f"{config.preset} preset, LinkBERT ({_objective_text('linkbert')}), then BERT "
                f"({_objective_text('bert')}) for the same steps: {length} each, twice the time")
    return f"{config.preset} preset, MLM + document relation prediction, {length}"


def evaluation_line(objective: str, evaluation: dict) -> str:
    """One run's held-out figures: masked-token accuracy, relation accuracy per class against chance."""
    line = (f"{OBJECTIVE_NAMES[objective]}: masked-token accuracy {evaluation['mlm_accuracy']:.3f} "
            f"(loss {evaluation['mlm_loss']:.3f})")
    if "relation_accuracy" in evaluation:
        task = "next-sentence accuracy" if objective == "bert" else "relation accuracy"
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in evaluation["relation_accuracy_per_class"].items())
        line += (f"; {task} {evaluation['relation_accuracy']:.3f} against chance "
                 f"{evaluation['relation_chance']:.3f} ({per_class}; {evaluation['pairs']:,} pairs)")
    return line
