"""``experiments/layout.py``: the folders of ``--out`` both grids lay out alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from linkbert.experiments.layout import GridLayout


@dataclass
class Mode:
    segment_budget: int = 14


@dataclass
class Layout(GridLayout):
    out: Path
    mode: Mode = field(default_factory=Mode)


def test_the_layout_is_the_grids_folders(tmp_path):
    layout = Layout(tmp_path)
    assert layout.prepared == tmp_path / "prepared-14" and layout.graph_dir("links") == tmp_path / "graphs" / "links"
    assert layout.withheld_file == tmp_path / "graphs" / "withheld.npy"
    assert layout.eval_dir == tmp_path / "eval"
    assert layout.linkpred_file == tmp_path / "eval" / "linkpred.json"
