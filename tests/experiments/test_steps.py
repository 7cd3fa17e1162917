"""``experiments/steps.py``: the cached steps where a grid chooses how they behave (the
link-prediction queries with and without ``refuse_empty``, a cell's resume rule and its weights).
The pretraining, export and fine-tuning steps are exercised through both grids' tests; the
queries' draw itself in test_link_prediction.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from linkbert.errors import ConfigError
from linkbert.experiments.layout import GridLayout
from linkbert.experiments.steps import cell_once, linkpred_queries_once
from linkbert.files import write_json
from linkbert.graph import DocGraph


@dataclass
class Mode:
    segment_budget: int = 14


@dataclass
class Layout(GridLayout):
    """A grid's layout over a given full graph, with no prepared corpus behind it."""

    out: Path
    full: DocGraph
    mode: Mode = field(default_factory=Mode)

    def corpus(self):
        return self

    def graph(self):
        return self.full


def layout_with_withheld(out: Path, n: int, src, dst, withheld) -> Layout:
    layout = Layout(out, DocGraph.from_edges(np.array(src), np.array(dst), n))
    layout.withheld_file.parent.mkdir(parents=True)
    np.save(layout.withheld_file, np.array(withheld, dtype=np.int64))
    return layout


def test_linkpred_queries_are_drawn_once_and_read_back(tmp_path):
    layout = layout_with_withheld(tmp_path, 8, [0, 1, 2, 3], [1, 2, 3, 4], [[0, 1], [2, 3]])
    first = linkpred_queries_once(layout, 10, 3)
    assert first["candidates"] == 3 and [(q["source"], q["target"]) for q in first["queries"]] == [(0, 1), (2, 3)]
    linked = {0: {0, 1}, 2: {1, 2, 3}}  # never the source, nor a document linked with it either way
    for q in first["queries"]:
        assert len(q["candidates"]) == 3 and not linked[q["source"]] & set(q["candidates"])
    assert json.loads(layout.linkpred_file.read_text()) == first
    layout.full = None  # read back: the graph is not asked again
    assert linkpred_queries_once(layout, 10, 3) == first


def test_no_query_is_a_file_without_queries_or_with_refuse_empty_an_error(tmp_path):
    # 3 documents, all linked with 0: no withheld link has an unlinked candidate
    layout = layout_with_withheld(tmp_path, 3, [0, 0], [1, 2], [[0, 1]])
    with pytest.raises(ConfigError, match="no withheld link has 1 unlinked candidates"):
        linkpred_queries_once(layout, 5, 1, refuse_empty=True)
    assert not layout.linkpred_file.exists()
    assert linkpred_queries_once(layout, 5, 1) == {"candidates": 1, "queries": []}
    assert layout.linkpred_file.exists()


def test_a_cell_is_computed_once_and_leaves_its_weights_only_when_asked(tmp_path):
    def compute(folder: Path):
        def run():
            for name in ("model", "pretrain/checkpoints/step-3", "pretrain/initial", "qa"):
                (folder / name).mkdir(parents=True)
            return {"metrics": {"x": 1.0}}
        return run

    discarded, kept = tmp_path / "a", tmp_path / "b"
    assert cell_once(discarded, compute(discarded), keep_models=False) == {"metrics": {"x": 1.0}}
    assert sorted(p.name for p in discarded.rglob("*")) == ["pretrain", "qa", "result.json"]
    cell_once(kept, compute(kept), keep_models=True)
    assert (kept / "model").is_dir() and (kept / "pretrain" / "initial").is_dir()
    write_json(kept / "result.json", {"metrics": {"x": 2.0}})
    assert cell_once(kept, lambda: pytest.fail("a finished cell was recomputed"), keep_models=False) == {
        "metrics": {"x": 2.0}}
    assert (kept / "model").is_dir()  # a finished cell is left as it is


# the APIs another part of the code may move: the experiments reach them through steps.py only
MOVING_APIS = ("linkbert.pretrain", "linkbert.model", "linkbert.export",
               "linkbert.finetune.run")


def imported_modules(path: Path) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_steps_reaches_the_pretraining_export_and_finetuning_apis():
    import linkbert.experiments

    root = Path(linkbert.experiments.__file__).parent
    users = {}
    for path in sorted(root.rglob("*.py")):
        used = {m for m in imported_modules(path) for api in MOVING_APIS if m == api or m.startswith(api + ".")}
        if used:
            users[str(path.relative_to(root))] = used
    assert set(users) == {"steps.py"}, users
