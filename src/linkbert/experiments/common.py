"""Pieces the experiment grids share, each the one owner of its step; ``experiments/graph/`` and
``experiments/ablation/`` both use them.

* the layout: ``GridLayout``, the part of the ``--out`` folder both grids lay out alike (a mixin
  of each grid's ``Context``); inside a cell's folder, ``result.json`` (``cell_once``),
  ``pretrain/`` with ``pretrain/initial/`` (``pretrain_once``) and ``model/`` (``export_once``),
  whose weights ``discard_weights`` removes;
* the command's frame: ``add_run_options``, ``command_main``, ``csv_choices``, ``say``;
* the steps: pretrain, export, fine-tune, draw the link-prediction queries and score them, read a
  corpus's texts again.

Every other choice is the caller's: which cell folder, which settings, how large.

Every step that produces a figure keeps it in a file and reads it back when asked again, so a
grid resumed after a crash redoes only what is missing.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from linkbert.files import write_json


class GridLayout:
    """Where both grids keep what their cells share, under ``out`` (a mixin of each grid's
    ``Context`` dataclass, which declares ``out`` and ``mode``)::

        prepared-<segment_budget>/   the corpus prepared once
        graphs/<name>/               a pretraining graph (none holds a withheld link)
        graphs/withheld.npy          the withheld (source, target) links
        eval/                        the evaluation data
        eval/linkpred.json           the link-prediction queries (withheld links, their candidates)
    """

    out: Path
    mode: Any  # the grid's Mode; its segment_budget names the prepared folder

    @property
    def prepared(self) -> Path:
        return self.out / f"prepared-{self.mode.segment_budget}"

    def corpus(self):
        """The prepared corpus (a ``PreparedCorpus``); only once the grid's ``prepare_assets`` made it."""
        from linkbert.prepared import PreparedCorpus

        return PreparedCorpus(self.prepared)

    def graph_dir(self, name: str) -> Path:
        return self.out / "graphs" / name

    @property
    def withheld_file(self) -> Path:
        return self.out / "graphs" / "withheld.npy"

    @property
    def eval_dir(self) -> Path:
        return self.out / "eval"

    @property
    def linkpred_file(self) -> Path:
        return self.eval_dir / "linkpred.json"


def say(grid: str, message: str) -> None:
    print(f"[{grid} {time.strftime('%H:%M:%S')}] {message}", flush=True)


def csv_choices(text: str, choices, what: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, every item one of ``choices``; a ValueError names the others."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in choices]
    if unknown or not items:
        raise ValueError(f"unknown {what}: {', '.join(unknown) or '(none)'}; choose from {', '.join(choices)}")
    return list(dict.fromkeys(items))


def quiet_transformers() -> None:
    """Every cell loads models with fresh heads: transformers' reports of that are expected, not news."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def add_run_options(parser) -> None:
    """The options every grid command ends with: the device, and whether cells keep their weights."""
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--keep-models", action="store_true", help="keep each cell's checkpoint and exported model")


def command_main(body) -> int:
    """A grid command's frame around ``body()``: warnings and worse on stderr, transformers quiet,
    and a ValueError (a bad argument or input) a ``ConfigError``: one line, not a traceback."""
    from linkbert.errors import ConfigError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    quiet_transformers()
    try:
        body()
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return 0


def document_texts(fmt: str, path: Path, store) -> list[str]:
    """Every ``store`` document's text, in store order, read again from the corpus ``path`` of
    reader format ``fmt`` (``corpus.open_reader``)."""
    from linkbert.corpus import Document, open_reader

    reader = open_reader(fmt, str(path))
    texts = {}
    for record in reader.records():
        parsed = reader.parse(record)
        if isinstance(parsed, Document):
            texts[parsed.id] = parsed.text
    return [texts[d["id"]] for d in store.document_names()]


# -- a cell: pretrain, export; what it leaves behind ------------------------------------------------

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


def export_once(layout: GridLayout, checkpoint: Path, out: Path) -> Path:
    """The pretraining checkpoint as a plain BERT folder with the prepared corpus's tokenizer
    (``export.export``), what fine-tuning loads; once."""
    from linkbert.export import export

    if not (out / "config.json").exists():
        export(checkpoint, out, tokenizer=layout.corpus().tokenizer_dir, overwrite=True)
    return out


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

def linkpred_queries(full, withheld: np.ndarray, n_queries: int, k: int, seed: int = 0) -> list[dict]:
    """Up to ``n_queries`` withheld links ``{"source", "target", "candidates"}``, each with ``k``
    candidates drawn uniformly among the documents linked with the source in neither direction
    in the *full* graph (a candidate is never a real, withheld or kept, link of the source)."""
    rng = np.random.default_rng((seed, 31337))
    src, dst = full.edges()
    linked: dict[int, set] = {}
    for s, t in zip(src.tolist(), dst.tolist()):
        linked.setdefault(s, set()).add(t)
        linked.setdefault(t, set()).add(s)
    queries = []
    for row in sorted(rng.permutation(len(withheld))[:n_queries].tolist()):
        s, t = int(withheld[row, 0]), int(withheld[row, 1])
        banned = np.fromiter(linked.get(s, set()) | {s, t}, dtype=np.int64)
        allowed = np.setdiff1d(np.arange(full.num_nodes), banned)
        if len(allowed) >= k:
            queries.append({"source": s, "target": t,
                            "candidates": sorted(rng.choice(allowed, k, replace=False).tolist())})
    return queries


def linkpred_queries_once(layout: GridLayout, n_queries: int, k: int, *, refuse_empty: bool = False) -> dict:
    """``layout.linkpred_file``: ``{"candidates": k, "queries": linkpred_queries(...)}`` over the
    corpus's full graph and the withheld links, drawn once and read back after; ``refuse_empty``:
    a ValueError rather than a file without a query."""
    path = layout.linkpred_file
    if path.exists():
        return json.loads(path.read_text())
    queries = linkpred_queries(layout.corpus().graph(), np.load(layout.withheld_file), n_queries, k)
    if refuse_empty and not queries:
        raise ValueError(f"no withheld link has {k} unlinked candidates: the corpus is too small")
    value = {"candidates": k, "queries": queries}
    write_json(path, value)
    return value


def load_pretraining_model(checkpoint: Path, device: str):
    """A pretraining checkpoint of either backend (``model.loading.load_checkpoint``, heads
    included) in fp32, eval mode."""
    from linkbert.model.loading import load_checkpoint

    return load_checkpoint(checkpoint).to(device)


def link_prediction_once(model, corpus, queries: list[dict], path: Path, *, max_length: int, device: str) -> dict:
    """``link_prediction.score_link_prediction`` of ``model`` on ``queries`` (document indices of
    ``corpus``), kept in ``path``."""
    from linkbert.link_prediction import score_link_prediction

    if path.exists():
        return json.loads(path.read_text())
    tokenizer = corpus.tokenizer()
    result = score_link_prediction(model, corpus.store, queries, cls_id=tokenizer.cls_token_id,
                                   sep_id=tokenizer.sep_token_id, pad_id=tokenizer.pad_token_id,
                                   max_length=max_length, device=device,
                                   separators_between=corpus.separators_between)
    write_json(path, result)
    return result
