"""Where a restore drill's outcome is kept: a local JSON file (read by GET /metrics on the node
that ran the drill) and annotations on the verified backup set in the repository (read by
``pgbackrest info --set=<label>`` from anywhere).  Standard library only.

The local file is ``$HOWDAH_DRILL_STATUS_FILE``, else ``drill-status.json`` in
``$HOWDAH_RUN_DIR``, else in ``/run/howdah`` when it exists (the image), else in ``$HOME``.
The drill (howdahctl) and the agent run in the same container with the same environment, so
both resolve the same file.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

IMAGE_RUN_DIR = "/run/howdah"
FILE_NAME = "drill-status.json"
ANNOTATION_PREFIX = "howdah-drill"


def status_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("HOWDAH_DRILL_STATUS_FILE"):
        return Path(env["HOWDAH_DRILL_STATUS_FILE"])
    if env.get("HOWDAH_RUN_DIR"):
        return Path(env["HOWDAH_RUN_DIR"]) / FILE_NAME
    if os.path.isdir(IMAGE_RUN_DIR):
        return Path(IMAGE_RUN_DIR) / FILE_NAME
    return Path(env.get("HOME") or "/tmp") / FILE_NAME


def load(path: Path) -> dict[str, Any]:
    """The last drills' record ({} when there is none or it cannot be read)."""
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return dict(loaded) if isinstance(loaded, dict) else {}


def save(path: Path, result: Mapping[str, Any]) -> str:
    """Merge one drill's result into the file: ``last`` is this drill, ``last_passed`` /
    ``last_failed`` the newest of each, with counters.  Returns an error text or ''."""
    state = load(path)
    passed = result.get("result") == "passed"
    state["last"] = dict(result)
    state["last_passed" if passed else "last_failed"] = dict(result)
    key = "drills_passed" if passed else "drills_failed"
    state[key] = int(state.get(key, 0)) + 1
    state["consecutive_failures"] = 0 if passed else int(state.get("consecutive_failures", 0)) + 1
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return ""


def annotation_pairs(result: Mapping[str, Any]) -> list[str]:
    """key=value pairs for ``pgbackrest annotate`` (short, no newlines)."""
    pairs = {"": result.get("result", "unknown"), "-at": result.get("finished_at", ""),
             "-seconds": result.get("seconds", ""), "-target": result.get("target", ""),
             "-node": result.get("node", "")}
    error = str(result.get("error") or "").replace("\n", " ")[:200]
    if error:
        pairs["-error"] = error
    return [f"{ANNOTATION_PREFIX}{suffix}={value}" for suffix, value in pairs.items() if value != ""]


def annotate(pgbackrest: Sequence[str], label: str, result: Mapping[str, Any], timeout: float = 300) -> str:
    """Annotate backup set `label` with the result.  Returns an error text or ''."""
    argv = [*pgbackrest, "annotate", f"--set={label}"]
    argv += [f"--annotation={pair}" for pair in annotation_pairs(result)]
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pgbackrest annotate: {exc}"
    if done.returncode != 0:
        return f"pgbackrest annotate failed (exit {done.returncode}): {_tail(done.stdout)}"
    return ""


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
