"""Layers point down: no import cycle between intrain's modules, nor between its packages.

Imports are read from the source (every ``import`` and ``from ... import``, including those inside
functions: a lazy import that closes a cycle is still a cycle), except under ``if TYPE_CHECKING:``,
which never runs. A package's modules count as the package at the package level (``intrain.methods``,
``intrain.engine``, ...; a top-level module is its own node).
"""

from __future__ import annotations

import ast
from pathlib import Path

import intrain

ROOT = Path(intrain.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imported(module: str, node: ast.AST, package: bool) -> list[str]:
    """The intrain modules an import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "intrain"]
    if node.level:
        base = module.split(".") if package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "intrain":
        return []
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        nodes = _runtime_nodes(ast.parse(path.read_text(encoding="utf-8")))
        graph[module] = {target for node in nodes if isinstance(node, (ast.Import, ast.ImportFrom))
                         for target in imported(module, node, path.name == "__init__.py")
                         if target in MODULES and target != module}
    return graph


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    def node(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {node(m): set() for m in graph}
    for module, targets in graph.items():
        packages[node(module)] |= {node(t) for t in targets} - {node(module)}
    return packages


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert package_graph({"intrain.x.a": {"intrain.y.b"}, "intrain.y.b": {"intrain.x.c"}, "intrain.x.c": set()}) == {
        "intrain.x": {"intrain.y"}, "intrain.y": {"intrain.x"}}


def test_the_graph_reads_relative_lazy_and_type_checking_imports():
    graph = import_graph()
    assert "intrain.masks" in graph["intrain.model_stats"]  # from .masks import ...
    assert "intrain.config" in graph["intrain.engine.build"]  # from ..config import ...
    assert "intrain.config" not in graph["intrain.methods.registry"]  # only under TYPE_CHECKING


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


def test_packages_point_one_way():
    assert cycles(package_graph(import_graph())) == []
