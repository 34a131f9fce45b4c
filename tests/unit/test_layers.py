"""The package's layers (docs: /work/shared/DESIGN.md): core <- dcs/pg/config <- agent <- api/ctl.
Checked on the source: every `import howdah.X` / `from howdah.X import` of a module, at any
depth (function-level imports included)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "image" / "howdah"
# layer -> the howdah subpackages it may not import
FORBIDDEN = {
    "core": {"dcs", "pg", "config", "agent", "api", "ctl", "entrypoint"},
    "dcs": {"agent", "api", "ctl", "entrypoint"},
    "pg": {"agent", "api", "ctl", "entrypoint"},
    "agent": {"api", "ctl", "entrypoint"},
}
# where the agent wires its REST server: the only agent module that may import api/
WIRING = {"agent/main.py"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "howdah" or name.startswith("howdah.")}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_does_not_import_the_layers_above_it(layer: str) -> None:
    wrong = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in FORBIDDEN[layer] and not (parts[1] == "api" and rel in WIRING):
                wrong.append(f"{rel} imports {name}")
    assert wrong == []
