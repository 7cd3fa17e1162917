"""``benchmarks/gpu_evidence.py``, the Python half of ``benchmarks/gpu_evidence.sh``: the smoke's
excerpts of the shared corpora and the report. The script itself runs in its CPU smoke in CI
(``.ci/run``: ``SMOKE=1 bash benchmarks/gpu_evidence.sh``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def evidence():
    """benchmarks/gpu_evidence.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gpu_evidence", ROOT / "benchmarks" / "gpu_evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_walk_keeps_a_connected_piece_and_goes_on_where_it_ends(evidence):
    graph = {"a": ["b", "c"], "b": ["d"], "c": [], "d": ["a"], "x": ["y"], "y": []}
    assert evidence.walk("a", graph, 3) == ["a", "b", "c"]
    assert evidence.walk("a", graph, 6) == ["a", "b", "c", "d", "x", "y"]


def test_the_cora_excerpt_keeps_only_the_links_inside_it(evidence, tmp_path):
    source = tmp_path / "cora.jsonl"
    records = [{"id": str(i), "title": f"t{i}", "text": "x", "label": "L", "links": [str((i + 1) % 10), "999"]}
               for i in range(10)]
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    written = [json.loads(line) for line in evidence.cora_excerpt(source, tmp_path / "out.jsonl", 4).read_text()
               .splitlines()]
    assert [r["id"] for r in written] == ["0", "1", "2", "3"]
    assert [r["links"] for r in written] == [["1"], ["2"], ["3"], []] and written[0]["label"] == "L"


def test_the_report_has_a_section_per_experiment_and_says_how_each_ended(evidence, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    (work / "graph").mkdir(parents=True)
    out.mkdir()
    (out / "env.txt").write_text("NVIDIA H100 80GB HBM3\n")
    (work / "graph" / "results.md").write_text("# Did the links help? The link benchmark\n\n## Few-shot\n\n| x |\n")
    (work / "graph" / "results.json").write_text(json.dumps({"plan": {"steps": 300}}))
    (work / "graph.status").write_text(json.dumps({"exit": 0, "seconds": 262, "limit": 315, "budget_minutes": 4.5}))
    (work / "ablation.status").write_text(json.dumps({"exit": 124, "seconds": 345, "limit": 345,
                                                      "budget_minutes": 5}))
    evidence.report(out, work)
    text = (out / "results.md").read_text()
    assert "NVIDIA H100 80GB HBM3" in text and "A CPU smoke run" not in text
    assert "## Cora: did the links help?" in text and "Did the links help? The link benchmark" not in text
    assert "Section `graph`: finished; 262 s of a 315 s limit; grid budget 4.5 min." in text
    assert "### Few-shot" in text
    assert "Section `ablation`: **stopped at its time limit** (345 s)" in text
    assert "No results were written" in text
    written = json.loads((out / "results.json").read_text())
    assert written["sections"]["graph"]["results"] == {"plan": {"steps": 300}} and not written["smoke"]
    assert written["sections"]["ablation"]["status"]["exit"] == 124
