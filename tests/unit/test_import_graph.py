"""The package import graph of `copytrade_cli`, built from the sources: no cycles between packages.

Every import counts, at module level or inside a function (a function-level import hides a dependency; it
does not remove it), with relative imports resolved. Modules collapse to their top-level package under
`copytrade_cli` (chain, cli, localworld, polymarket, runbook, state, supervisor, ...); a top-level module
(settings.py, errors.py) is its own node.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import copytrade_cli

ROOT = Path(copytrade_cli.__file__).resolve().parent
PKG = "copytrade_cli"

Edge = tuple[str, str, int, str]  # (importing module, imported module, line, how it was written)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Every dotted name an import statement may load (`from a import b` may load module a.b)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{a.name}" for a in node.names]


def import_edges() -> list[Edge]:
    """All imports between `copytrade_cli` modules, from every statement in every source file."""
    mods = _modules()
    edges: list[Edge] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(node, name, path.name == "__init__.py"):
                if target in mods and target != name:
                    edges.append((name, target, node.lineno, ast.unparse(node)))
    return edges


def node_of(module: str) -> str:
    """The graph node of a module: its package directly under copytrade_cli, or itself if top-level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PKG


def package_graph(edges: list[Edge]) -> dict[str, dict[str, list[Edge]]]:
    """node -> imported node -> the imports that make the edge (self-edges dropped)."""
    graph: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
    for edge in edges:
        a, b = node_of(edge[0]), node_of(edge[1])
        if a != b:
            graph[a][b].append(edge)
    return graph


def find_cycles(graph: dict[str, dict[str, list[Edge]]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each as a sorted node list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(set(graph) | {w for targets in graph.values() for w in targets}):
        if v not in index:
            visit(v)
    return out


def _describe(graph: dict[str, dict[str, list[Edge]]], component: list[str]) -> str:
    members = set(component)
    lines = [" <-> ".join(component) + ":"]
    for a in component:
        for b, why in sorted(graph.get(a, {}).items()):
            if b in members:
                lines += [f"  {a} -> {b}: {m}:{line} `{how}`" for m, _t, line, how in why[:5]]
                if len(why) > 5:
                    lines.append(f"  ... and {len(why) - 5} more {a} -> {b}")
    return "\n".join(lines)


def test_the_graph_sees_function_level_and_relative_imports():
    edges = import_edges()
    assert any(a == "copytrade_cli.cli.main" and b == "copytrade_cli.cli.common" for a, b, _l, _h in edges)
    # a function-level relative import (inside a command body) is an edge too
    assert any(a == "copytrade_cli.cli.fork_cmd" and b == "copytrade_cli.runbook.fork" for a, b, _l, _h in edges)
    graph = package_graph(edges)
    assert {"chain", "cli", "localworld", "polymarket", "runbook", "state", "supervisor", "settings",
            "errors"} <= set(graph) | {w for t in graph.values() for w in t}


def test_a_cycle_is_found_and_named():
    e = ("m", "n", 1, "import n")
    graph = {"a": {"b": [e]}, "b": {"c": [e]}, "c": {"a": [e]}, "d": {"a": [e]}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert "a <-> b <-> c" in _describe(graph, ["a", "b", "c"])


def test_no_cycle_between_packages():
    graph = package_graph(import_edges())
    cycles = find_cycles(graph)
    assert not cycles, "import cycles between copytrade_cli packages:\n" + "\n".join(_describe(graph, c)
                                                                                     for c in cycles)


def test_chain_does_not_import_localworld():
    graph = package_graph(import_edges())
    why = graph.get("chain", {}).get("localworld", [])
    assert not why, "chain/ imports localworld/ (orchestration that needs both belongs in runbook/):\n" + "\n".join(
        f"  {m}:{line} `{how}`" for m, _t, line, how in why)


def test_supervisor_does_not_import_the_runbook():
    graph = package_graph(import_edges())
    why = graph.get("supervisor", {}).get("runbook", [])
    assert not why, "supervisor/ imports runbook/ (the pre-flight runs above it, in runbook.supervise):\n" + \
        "\n".join(f"  {m}:{line} `{how}`" for m, _t, line, how in why)
