"""``GridLayout``: the part of an experiment's ``--out`` folder both grids lay out alike (a mixin
of each grid's ``Context``). Inside a cell's folder, ``experiments.steps`` keeps ``result.json``,
``pretrain/`` with ``pretrain/initial/`` and ``model/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class GridLayout:
    """Where both grids keep what their cells share, under ``out`` (a mixin of each grid's
    ``Context`` dataclass, which declares ``out`` and ``mode``)::

        prepared-<segment_budget>/   the corpus prepared once
        graphs/<name>/               a pretraining graph (none holds a withheld link)
        graphs/withheld.npy          the withheld (source, target) links
        eval/                        the evaluation data
        eval/linkpred.json           the link-prediction queries (withheld links, their candidates)
        first-stage/                 the masked-LM first stage (``experiments.first_stage``), when used
        probe/                       the planner's probe: a short pretraining run and its evaluation
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
    def first_stage_dir(self) -> Path:
        return self.out / "first-stage"

    @property
    def probe_dir(self) -> Path:
        return self.out / "probe"

    @property
    def eval_dir(self) -> Path:
        return self.out / "eval"

    @property
    def linkpred_file(self) -> Path:
        return self.eval_dir / "linkpred.json"
