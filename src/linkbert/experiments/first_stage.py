"""The masked-LM first stage: a fair starting point for a grid's variants (init ``first-stage``).

The paper continues LinkBERT and its BERT baseline from one masked-LM BERT. The only BERT
installed here, all-MiniLM-L6-v2, was trained contrastively for sentence embeddings, and masked-LM
steps damage it (docs/graph_experiment.md); from scratch, a cell's few minutes leave a model at
chance. So a grid with init ``first-stage`` first trains its own small BERT (the grid's scratch
preset, with the cells' batch, input length, learning rate and device options) with **masked LM
only**, then continues it per variant, with and without links, as the paper did.

What it is trained on: **the grid's corpus without its links**: the prepared corpus's text, with
a graph of no edge at all (``graphs/none``), no linked pair (``p_linked`` 0) and no relation loss
(objective ``mlm-only``, BERT's contiguous / random inputs). The corpus rather than other text,
as in the paper, whose BERT had read the Wikipedia that LinkBERT then continued on, but never
its links; the text is what every variant pretrains on anyway. It never sees a link (so never a
withheld one), a label, or an evaluation set: those live in ``eval/`` and the graphs, and the
only inputs the run is handed are the prepared corpus and the empty graph
(``first-stage/trained_on.json`` records them; tested).

One first stage per grid, shared by every variant **and every seed**: like the paper's one BERT
checkpoint. Seeds still vary all that follows (the fresh relation head, the data order, the
evaluation sets and fine-tuning), and pairing by seed cancels what the start does to both
variants; a first stage per seed would spend five of them out of a grid's few minutes.

Layout: ``first-stage/run/`` (the pretraining run, resumed like a cell's), ``first-stage/trained_on.json``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from linkbert.experiments.frame import say
from linkbert.experiments.layout import GridLayout
from linkbert.experiments.steps import pretrain_once
from linkbert.files import write_json

FIRST_STAGE = "first-stage"
SEED = 4242  # the first stage's own seed: none of the cells' seeds


def empty_graph(layout: GridLayout) -> Path:
    """``graphs/none``: a graph over the corpus's documents with no link, what the first stage reads."""
    from linkbert.graph import DocGraph

    folder = layout.graph_dir("none")
    if not (folder / "graph.json").exists():
        none = np.zeros(0, np.int64)
        DocGraph.from_edges(none, none, layout.corpus().store.num_documents).save(folder)
    return folder


def first_stage_config(layout: GridLayout, cell_config, steps: int):
    """The first stage's run: ``cell_config`` (a cell's ``PretrainConfig``: its preset, batch,
    length, learning rate, device options) from scratch, masked LM only, on the empty graph."""
    return dataclasses.replace(
        cell_config, init="scratch", objective="mlm-only", graph=str(empty_graph(layout).resolve()),
        p_contiguous=0.5, p_random=0.5, p_linked=0.0, max_steps=max(1, steps), warmup_steps=max(1, steps // 10),
        seed=SEED, save_every=max(1, steps), keep_checkpoints=1, log_every=max(1, steps // 10))


def first_stage_once(layout: GridLayout, cell_config, steps: int) -> Path:
    """The first stage's checkpoint folder: trained now (an interrupted run resumed), or, once
    ``trained_on.json`` says it is done, the one trained before, whatever ``steps`` says now
    (every cell of the grid continues the same model)."""
    done = first_stage_checkpoint(layout)
    if done is not None:
        return done
    config = first_stage_config(layout, cell_config, steps)
    say("first stage", f"masked LM only, {config.max_steps} steps of {config.batch_size} x {config.max_length} "
                       f"tokens on {layout.prepared.name} without its links (preset {config.preset})")
    checkpoint, summary = pretrain_once(layout, config, layout.first_stage_dir / "run")
    evaluation = summary.get("eval") or {}
    record = {"corpus": str(layout.prepared.resolve()), "graph": config.graph,
              "graph_links": int(json.loads((Path(config.graph) / "graph.json").read_text())["edges"]),
              "objective": config.objective,
              "pairs": {"contiguous": config.p_contiguous, "random": config.p_random, "linked": config.p_linked},
              "preset": config.preset, "steps": summary.get("step"), "tokens": summary.get("tokens"),
              "batch_size": config.batch_size, "max_length": config.max_length, "lr": config.lr,
              "seed": config.seed, "train_seconds": summary.get("train_seconds"),
              "heldout_mlm_acc": (100 * evaluation["mlm_accuracy"] if "mlm_accuracy" in evaluation else None),
              "checkpoint": str(checkpoint.resolve())}
    write_json(layout.first_stage_dir / "trained_on.json", record)
    say("first stage", f"done: {record['steps']} steps, held-out MLM accuracy {_percent(record['heldout_mlm_acc'])}")
    return checkpoint


def first_stage_checkpoint(layout: GridLayout) -> Path | None:
    """The trained first stage's checkpoint folder, or None before it is trained."""
    record = trained_on(layout)
    return Path(record["checkpoint"]) if record else None


def trained_checkpoint(layout: GridLayout) -> str:
    """The trained first stage's checkpoint folder (resolved), what a cell continues; the grid
    trains the first stage before any cell (``run_grid``), so its absence is a bug."""
    checkpoint = first_stage_checkpoint(layout)
    if checkpoint is None:
        raise RuntimeError("the first stage must be trained before a cell continues it (run.run_grid trains it)")
    return str(checkpoint.resolve())


def trained_on(layout: GridLayout) -> dict | None:
    """What the first stage read and reached (``trained_on.json``), or None before it is trained."""
    path = layout.first_stage_dir / "trained_on.json"
    return json.loads(path.read_text()) if path.exists() else None


def describe(record: dict | None) -> str:
    """One sentence for a results.md: what the first stage was and what it reached."""
    if not record:
        return "the masked-LM first stage has not been trained yet"
    return (f"a `{record['preset']}` BERT trained here with masked LM only for {record['steps']} steps of "
            f"{record['batch_size']} x {record['max_length']} tokens ({record['tokens']:,} tokens) on the corpus "
            f"without its links (no graph edge, no linked pair, no label, no evaluation set), shared by every variant "
            f"and seed; its held-out MLM accuracy {_percent(record['heldout_mlm_acc'])}")


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.1f}%"
