"""The cached steps of a grid cell, and the one place the experiments reach the pretraining,
model-loading, export and fine-tuning APIs (``pretrain.run``, ``pretrain.settings``,
``model.loading``, ``export``, ``finetune.run``): a move of one of them changes an import here only.

* pretraining: ``pretrain_settings`` (a run's ``PretrainConfig``), ``measure_step_seconds``,
  ``pretrain_once`` (resumed, or read back), ``save_initial_model`` (a grid's ``init`` variant);
* the model: ``load_pretraining_model``, ``export_once``, ``finetune_once``;
* link prediction: ``linkpred_queries_once`` (the queries, drawn once), ``link_prediction_once``;
* a cell: ``cell_once`` (its ``result.json``, written last) and ``discard_weights``.

Every other choice is the caller's: which cell folder, which settings, how large. Every step
that produces a figure keeps it in a file and reads it back when asked again, so a grid resumed
after a crash redoes only what is missing. Where things are: ``experiments.layout.GridLayout``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from linkbert.errors import ConfigError
from linkbert.experiments.layout import GridLayout
from linkbert.files import write_json


# -- pretraining ---------------------------------------------------------------------------------------

def pretrain_settings(**settings):
    """A pretraining run's settings: a ``pretrain.settings.PretrainConfig``."""
    from linkbert.pretrain.settings import PretrainConfig

    return PretrainConfig(**settings)


def measure_step_seconds(layout: GridLayout, config, **options) -> float:
    """Seconds per pretraining step of ``config`` on ``layout``'s prepared corpus on this machine
    (``pretrain.run.measure_step_seconds``; ``options``: its ``steps``)."""
    from linkbert.pretrain.run import measure_step_seconds as measure

    return measure(config, str(layout.prepared), **options)


def pretrain_once(layout: GridLayout, config, folder: Path, *, initial_only: bool = False) -> tuple[Path, dict]:
    """``config``'s pretraining on ``layout``'s prepared corpus into ``folder``, resuming its last
    checkpoint (a run that reached ``config.max_steps`` is read back); ``initial_only``: no step,
    the initial model saved in ``folder/initial`` instead (a grid's ``init`` variant). Returns
    (checkpoint folder, summary)."""
    from linkbert import checkpoint
    from linkbert.pretrain.run import pretrain

    if initial_only:
        return save_initial_model(layout.corpus(), config, folder / "initial"), {"step": 0}
    summary_file = folder / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    if summary is None or summary.get("step") != config.max_steps:
        summary = pretrain(config, str(layout.prepared), str(folder))
    return checkpoint.latest(folder), summary


def save_initial_model(corpus, config, folder: Path) -> Path:
    """The model ``config``'s pretraining would start from (``pretrain.initial_model``), saved
    with ``corpus``'s tokenizer: the "no further pretraining" reference of a grid."""
    from linkbert.pretrain.run import initial_model

    if not (folder / "model.safetensors").exists():
        model = initial_model(preset=config.preset, init=config.init, objective=config.objective,
                              vocab_size=corpus.store.vocab_size, dropout=config.dropout, seed=config.seed)
        model.save_pretrained(folder)
        corpus.tokenizer().save_pretrained(folder)
    return folder


# -- the model: loaded, exported, fine-tuned -----------------------------------------------------------

def load_pretraining_model(checkpoint: Path, device: str):
    """A pretraining checkpoint (``model.loading.load_checkpoint``, heads included) in fp32, eval
    mode, computed by the backend ``auto`` picks for ``device``."""
    from linkbert.model.loading import load_checkpoint

    return load_checkpoint(checkpoint, device=device).to(device)


def export_once(layout: GridLayout, checkpoint: Path, out: Path) -> Path:
    """The pretraining checkpoint as the transformers model it trained, with the prepared corpus's
    tokenizer (``export.export``), what fine-tuning loads; once."""
    from linkbert.export import export

    if not (out / "config.json").exists():
        export(checkpoint, out, tokenizer=layout.corpus().tokenizer_dir, overwrite=True)
    return out


def finetune_once(model_dir: Path, task: str, data: Path, out: Path, *, seed: int, device: str, **settings) -> dict:
    """One fine-tuning run (``finetune.run``) of ``model_dir`` on ``data`` into ``out``; its
    ``metrics.json`` read back when it finished before. ``out`` is the caller's own folder
    (``overwrite``); the model is not saved, only the figures and predictions."""
    from linkbert.finetune.run import FinetuneConfig, run

    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    config = FinetuneConfig(task=task, model=str(model_dir), data=str(data), out=str(out), seed=seed,
                            precision="auto", device=device, overwrite=True, save_model=False, log_every=1000,
                            **settings)
    return run(config)


# -- link prediction of the withheld links ------------------------------------------------------------

def linkpred_queries_once(layout: GridLayout, n_queries: int, k: int, *, refuse_empty: bool = False) -> dict:
    """``layout.linkpred_file``: ``{"candidates": k, "queries": link_prediction.draw_queries(...)}``
    over the corpus's full graph and the withheld links, drawn once and read back after;
    ``refuse_empty``: a ConfigError rather than a file without a query."""
    from linkbert.link_prediction import draw_queries

    path = layout.linkpred_file
    if path.exists():
        return json.loads(path.read_text())
    queries = draw_queries(layout.corpus().graph(), np.load(layout.withheld_file), n_queries, k)
    if refuse_empty and not queries:
        raise ConfigError(f"no withheld link has {k} unlinked candidates (documents linked with neither of its ends) "
                          "to rank it among: the corpus is too small or too densely linked for link prediction; "
                          "give more documents")
    value = {"candidates": k, "queries": queries}
    write_json(path, value)
    return value


def link_prediction_once(model, corpus, queries: list[dict], path: Path, *, max_length: int, device: str,
                         batch_size: int = 64) -> dict:
    """``link_prediction.score_link_prediction`` of ``model`` on ``queries`` (document indices of
    ``corpus``), kept in ``path``; ``batch_size``: rows per forward pass."""
    from linkbert.link_prediction import score_link_prediction

    if path.exists():
        return json.loads(path.read_text())
    tokenizer = corpus.tokenizer()
    result = score_link_prediction(model, corpus.store, queries, cls_id=tokenizer.cls_token_id,
                                   sep_id=tokenizer.sep_token_id, pad_id=tokenizer.pad_token_id,
                                   max_length=max_length, device=device,
                                   separators_between=corpus.separators_between, batch_size=batch_size)
    write_json(path, result)
    return result


# -- a cell: its result, what it leaves behind ------------------------------------------------------

def cell_once(folder: Path, compute, *, keep_models: bool) -> dict:
    """A grid cell's result: ``folder/result.json`` read back when it is there (a finished cell is
    never recomputed), else ``compute()``'s (in ``folder``, created first), written last and
    atomically; then, unless ``keep_models``, the cell's weights go (``discard_weights``)."""
    result_file = folder / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    result = compute()
    write_json(result_file, result)
    if not keep_models:
        discard_weights(folder)
    return result


def discard_weights(folder: Path) -> None:
    """What a finished cell leaves behind is its figures and logs, not 100 MB of weights: its
    ``model/`` (the export), ``pretrain/checkpoints/`` and ``pretrain/initial/`` go."""
    for name in ("model", "pretrain/checkpoints", "pretrain/initial"):
        shutil.rmtree(folder / name, ignore_errors=True)
