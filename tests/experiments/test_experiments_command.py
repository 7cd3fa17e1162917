"""``linkbert experiment``: the dispatcher names both experiments, each command takes its
settings the one way (``--help`` lists each with its default), and the two grids stand apart:
``graph/`` and ``ablation/`` import the shared modules and the library, never each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import linkbert.experiments


def test_the_experiment_command_names_both_experiments(capsys):
    from linkbert.cli import COMMANDS, main

    assert COMMANDS["experiment"][0] == "linkbert.experiments.command"
    assert "graph" in COMMANDS["experiment"][1] and "ablation" in COMMANDS["experiment"][1]
    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    out = capsys.readouterr().out
    assert "graph" in out and "ablation" in out and "Wikispeedia" in out


@pytest.mark.parametrize("experiment, flags", [
    ("graph", ("--corpus", "--out", "--mode", "--init", "--tokenizer", "--seeds", "--variants", "--budget-minutes",
               "--curve", "--shots", "--device", "--keep-models", "--id-field", "--title-field", "--text-field",
               "--links-field", "--label-field", "--edges", "--edges-source", "--edges-target")),
    ("ablation", ("--data-root", "--out", "--mode", "--budget-minutes", "--seeds", "--inits", "--variants", "--minilm",
                  "--tokenizer", "--device", "--keep-models")),
])
def test_help_lists_every_setting_with_its_default(experiment, flags, capsys):
    from linkbert.cli import main

    with pytest.raises(SystemExit):
        main(["experiment", experiment, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for flag in flags:
        assert flag in out, flag
    assert "(default: auto)" in out and "(default: false)" in out
    assert "gpu: the" in out and "<= 6 min of one H100" in out and "first-stage" in out  # the gpu mode, its init
    if experiment == "ablation":
        assert "(default: $LINKBERT_DATA)" in out


def test_the_ablation_reads_its_data_folder_from_linkbert_data_by_default(monkeypatch, tmp_path):
    from linkbert import settings
    from linkbert.cli import parse
    from linkbert.errors import ConfigError
    from linkbert.experiments.ablation.command import AblationSettings, data_root

    monkeypatch.setenv("LINKBERT_DATA", str(tmp_path))
    given = settings.from_arguments(AblationSettings, parse(["experiment", "ablation", "--out", "o"]))
    assert given.out == "o" and given.seeds == 0 and data_root(given) == tmp_path
    explicit = settings.from_arguments(AblationSettings, parse(["experiment", "ablation", "--out", "o",
                                                               "--data-root", "elsewhere"]))
    assert data_root(explicit) == Path("elsewhere")
    monkeypatch.delenv("LINKBERT_DATA")
    with pytest.raises(ConfigError, match="no data folder"):
        data_root(given)


def package_imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("grid, other", [("graph", "ablation"), ("ablation", "graph")])
def test_neither_grid_imports_the_other(grid, other):
    root = Path(linkbert.experiments.__file__).parent
    imports = package_imports(root / grid)
    assert not {m for m in imports if m.startswith(f"linkbert.experiments.{other}")}, imports


def test_every_package_init_is_a_docstring_only():
    root = Path(linkbert.experiments.__file__).parent
    for path in [root / "__init__.py", *root.glob("*/__init__.py")]:
        body = ast.parse(path.read_text(encoding="utf-8")).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), path
