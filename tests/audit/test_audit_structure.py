"""audit/'s structure (issue 15): no import cycles, no private names imported across modules,
the CLI calls the library and never the reverse, only the CLI connects to Temporal, one finding
type, one chunked reader, one place that parses a chain id."""

from __future__ import annotations

import ast
from pathlib import Path

AUDIT = Path(__file__).resolve().parents[2] / "audit"
CLI = {"audit.cli", "audit.__main__"}


def modules() -> dict[str, ast.Module]:
    return {f"audit.{p.stem}": ast.parse(p.read_text()) for p in sorted(AUDIT.glob("*.py"))}


def imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) of every import, at any depth (lazy imports count too)."""
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {
        name: {m for m, _ in imports(tree) if m in mods and m != name}
        for name, tree in mods.items()
    }


def test_no_import_cycles() -> None:
    g = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_private_names_across_modules() -> None:
    bad = [
        (name, mod, n)
        for name, tree in modules().items()
        for mod, names in imports(tree)
        if mod.startswith("audit")
        for n in names
        if n.startswith("_")
    ]
    assert bad == []


def test_the_library_never_imports_the_cli_and_only_the_cli_connects() -> None:
    for name, tree in modules().items():
        if name in CLI:
            continue
        targets = {m for m, _ in imports(tree)}
        assert not targets & CLI, name
        assert "docket.client" not in targets, name  # reconcile receives a connected Client


def test_one_finding_type_one_chunk_reader_one_chain_id_parser() -> None:
    for name, tree in modules().items():
        classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        if name != "audit.findings":
            assert not [c for c in classes if c.endswith("Finding")], name
        if name != "audit.chunks":
            assert "Chunk" not in classes, name
        source = (AUDIT / f"{name.split('.')[1]}.py").read_text()
        if name != "audit.chain":
            assert 'rpartition(":")' not in source, name
