"""The repository's executables (scripts/, bootstrap/) loaded as modules, for tests of their functions,
and stand-in programs that record how they were called."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from .config import REPO


def load_script(path: str) -> ModuleType:
    """`path` (relative to the repository, e.g. "scripts/vip_hook.py") as a module named by its stem."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recording_program(directory: Path, name: str, body: str) -> str:
    """An executable `directory/name` that appends "<name> <its arguments>" to directory/calls,
    then runs the shell `body`; its path."""
    path = directory / name
    path.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {directory}/calls\n{body}\n")
    path.chmod(0o755)
    return str(path)
