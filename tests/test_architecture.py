"""The house's shape, checked: the package's modules import each other without a circle, a
package's ``__init__`` imports none of its own modules, the two experiments never import each other, and no
source file grows past 500 lines. The import graph is read from the source (every ``import`` and
``from ... import`` statement, at module level or inside a function), so a lazy import counts as
much as a top-level one: both are arrows of the design."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "linkbert"
PACKAGE = "linkbert"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules ``name`` imports: for ``from a.b import c``, ``a.b.c`` where that is
    a module, else ``a.b``; a relative import resolved against ``name``'s package."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target.split(".")[0] == PACKAGE:
                found.add(target)
    return found


MODULES = _modules()
GRAPH = {name: _imports(name, path, MODULES) for name, path in MODULES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor: 0 for one that imports nothing of the package, else one above the
    highest it imports. Defined because the graph has no circle; every arrow then points down."""
    floor: dict[str, int] = {}

    def of(node: str) -> int:
        if node not in floor:
            floor[node] = 1 + max((of(other) for other in graph[node]), default=-1)
        return floor[node]

    for node in graph:
        of(node)
    return floor


def test_the_import_graph_has_no_circle():
    assert _circles(GRAPH) == []
    floor = floors(GRAPH)
    upward = [(a, b) for a, targets in GRAPH.items() for b in targets if floor[b] >= floor[a]]
    assert upward == []  # follows from no circle; stated for the reader


def test_a_package_init_imports_none_of_its_own_modules():
    """Importing ``linkbert.pretrain.run`` runs ``linkbert/pretrain/__init__.py`` first: were it to
    import the package's own modules, every submodule would pull in its siblings (and their
    circles)."""
    inits = {name: {t for t in GRAPH[name] if t.startswith(name + ".")}
             for name, path in MODULES.items() if path.name == "__init__.py"}
    assert {name: sorted(targets) for name, targets in inits.items() if targets} == {}


def test_the_experiments_never_import_each_other():
    experiments = {name.split(".")[2] for name, path in MODULES.items()
                   if name.startswith(f"{PACKAGE}.experiments.") and path.name == "__init__.py"}
    assert {"graph", "ablation"} <= experiments
    crossing = [(a, b) for a, targets in GRAPH.items() for b in targets
                if a.startswith(f"{PACKAGE}.experiments.") and b.startswith(f"{PACKAGE}.experiments.")
                and len(a.split(".")) > 3 and len(b.split(".")) > 3
                and a.split(".")[2] in experiments and b.split(".")[2] in experiments
                and a.split(".")[2] != b.split(".")[2]]
    assert crossing == []


def test_the_ground_floor_imports_nothing_of_the_package():
    for name in ("errors", "objectives", "files", "settings", "runtime", "store", "segment", "graph", "metrics"):
        deep = GRAPH[f"{PACKAGE}.{name}"] - {f"{PACKAGE}.errors"}
        assert not deep, f"{name} imports {sorted(deep)}"


@pytest.mark.parametrize("path", sorted(SOURCE.rglob("*.py")), ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_source_file_is_over_500_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_the_walk_sees_lazy_imports(tmp_path):
    """The graph would miss the design's arrows if it read only top-level imports."""
    assert f"{PACKAGE}.model.loading" in GRAPH[f"{PACKAGE}.pretrain.run"]  # imported inside a function
