"""What the quickstart runs of the other commands' stages: ``linkbert prepare`` and ``linkbert
pretrain``, called with flat arguments. Every import of ``linkbert.prepare`` and
``linkbert.pretrain`` in the quickstart is here, so that a change of theirs touches this module
only.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from linkbert.prepare.build import parsed_documents, prepare
from linkbert.prepare.settings import (EDGE_OPTIONS, LINK_BUILDERS, PrepareConfig, input_paths, reader_options,
                                       reader_setting)
from linkbert.pretrain.run import TrainingFailed, initial_model, measure_step_seconds, pretrain
from linkbert.pretrain.settings import PretrainConfig

__all__ = ["EDGE_OPTIONS", "LINK_BUILDERS", "TrainingFailed", "bert_baseline_settings", "input_paths",
           "parsed_documents", "prepare_corpus", "pretrain_run", "pretrain_settings", "reader_options", "reader_setting", "step_seconds",
           "untrained_checkpoint"]


def prepare_corpus(fmt: str, path: Path, data: Path, *, workers: int, link_builder: str, segment_budget: int,
                   vocab_size: int, reader_options: dict[str, str], skip_bad: bool = False) -> dict:
    """``linkbert prepare`` of the corpus ``path`` into ``data`` (replaced), training a WordPiece
    vocabulary of ``vocab_size`` on it; ``reader_options``: prepare's ``--id-field``, ``--edges``, ...
    (``READER_OPTIONS``) that are given; ``skip_bad``: prepare's ``--skip-bad``. Returns its
    statistics (``stats.json``)."""
    shutil.rmtree(data, ignore_errors=True)
    return prepare(PrepareConfig(format=fmt, input=str(path), tokenizer="train", out=str(data), workers=workers,
                                 link_builder=link_builder, segment_budget=segment_budget, vocab_size=vocab_size,
                                 skip_bad=skip_bad, **reader_options))


def pretrain_settings(*, preset: str, max_length: int, batch_size: int, lr: float, max_steps: int, eval_pairs: int,
                      evals: int, seed: int, budget_minutes: float) -> PretrainConfig:
    """LinkBERT's run of ``max_steps`` steps: warmup a tenth of them, ``evals`` held-out
    evaluations on 5% of the documents, one checkpoint at the end, within ``budget_minutes`` (0: no
    wall-clock budget, the steps alone)."""
    return PretrainConfig(preset=preset, objective="linkbert", max_length=max_length, batch_size=batch_size, lr=lr,
                          max_steps=max_steps, warmup_steps=max(1, max_steps // 10), heldout_fraction=0.05,
                          eval_pairs=eval_pairs, eval_every=max(1, max_steps // evals), save_every=max_steps,
                          keep_checkpoints=1, log_every=max(1, min(10, max_steps // 50)), seed=seed,
                          budget_minutes=budget_minutes, precision="auto")


def bert_baseline_settings(linkbert: PretrainConfig, steps: int) -> PretrainConfig:
    """BERT's run beside LinkBERT's: the same settings and seed, MLM + next-sentence prediction,
    ``steps`` steps (LinkBERT's) and no wall-clock budget of its own: the same steps, not the
    same seconds, make the runs comparable."""
    return dataclasses.replace(linkbert, objective="bert", max_steps=steps, budget_minutes=0.0,
                               warmup_steps=min(linkbert.warmup_steps, steps))


def step_seconds(settings: PretrainConfig, data: Path) -> float:
    """Seconds per pretraining step of ``settings`` on the prepared corpus ``data``, measured here."""
    return measure_step_seconds(settings, str(data))


def pretrain_run(settings: PretrainConfig, data: Path, run_dir: Path) -> dict:
    """``linkbert pretrain`` into ``run_dir`` (replaced); returns the run's summary."""
    shutil.rmtree(run_dir, ignore_errors=True)
    return pretrain(settings, str(data), str(run_dir))


def untrained_checkpoint(checkpoint: str, folder: Path, *, preset: str, seed: int) -> Path:
    """A checkpoint of the pretraining model as it was before its first step (same seed, same
    initial weights), with the pretrained checkpoint's tokenizer: the no-pretraining baseline."""
    from linkbert.tokenization import load_tokenizer

    tokenizer = load_tokenizer(str(checkpoint))
    model = initial_model(preset=preset, init="scratch", objective="linkbert", vocab_size=len(tokenizer),
                          dropout=0.1, seed=seed)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
