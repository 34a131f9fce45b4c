"""The package's layers (docs: /work/shared/DESIGN.md): core <- dcs/pg/config <- agent <- api/ctl.
Checked on the source: every `import howdah.X` / `from howdah.X import` of a module, at any
depth (function-level imports included). The composition root, howdah/main.py (the `howdah`
command), sits above every layer: it alone wires the agent to its REST API."""
from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "image" / "howdah"
# layer -> the howdah subpackages it may not import (no exemptions)
FORBIDDEN = {
    "core": {"dcs", "pg", "config", "agent", "api", "ctl", "entrypoint", "main"},
    "dcs": {"agent", "api", "ctl", "entrypoint", "main"},
    "pg": {"agent", "api", "ctl", "entrypoint", "main"},
    "config": {"agent", "api", "ctl", "entrypoint", "main"},
    "agent": {"api", "ctl", "entrypoint", "main"},
    "api": {"ctl", "entrypoint", "main"},
    "ctl": {"api", "agent", "entrypoint", "main"},
    "backup": {"agent", "api", "ctl", "entrypoint", "main"},
    "entrypoint": {"api", "ctl", "main"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "howdah" or name.startswith("howdah.")}


def _unit(path: Path) -> str:
    """The subpackage (or top-level module) a source file belongs to."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _graph() -> dict[str, set[str]]:
    """subpackage -> the other howdah subpackages/modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _unit(path)
        deps = graph.setdefault(src, set())
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] != src:
                deps.add(parts[1])
    return graph


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_does_not_import_the_layers_above_it(layer: str) -> None:
    wrong = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in FORBIDDEN[layer]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []


def test_the_subpackages_import_each_other_without_a_cycle() -> None:
    graph = _graph()
    cycles: list[str] = []
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            cycles.append(" -> ".join(trail[trail.index(node):] + [node]))
            return
        if node in done:
            return
        for dep in sorted(graph.get(node, ())):
            visit(dep, trail + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    assert cycles == []


def test_nothing_imports_the_composition_root() -> None:
    assert [src for src, deps in _graph().items() if "main" in deps] == []


def test_the_console_scripts_name_functions_that_exist() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["howdah"] == "howdah.main:main"
    for target in scripts.values():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func)), target
