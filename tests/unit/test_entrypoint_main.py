"""The entrypoint process: a bad variable is one line on stderr, exit 2, nothing written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "image"),
            "HOWDAH_RUN_DIR": str(tmp_path / "run"), "HOME_DIR": str(tmp_path / "home"), **env}
    return subprocess.run([sys.executable, "-m", "howdah.entrypoint.main"], env=full, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"PGPORT": "54x2"}, "PGPORT"),
        ({"SPILO_CONFIGURATION": "postgresql: {parameters: [1"}, "SPILO_CONFIGURATION"),
        ({"SCOPE": "c", "ETCD_URL": "http://:2379"}, "ETCD_URL"),
    ],
)
def test_bad_variable_stops_at_once(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    result = run(tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"howdah-entrypoint: invalid {variable}: ")
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "run").exists() and not (tmp_path / "home").exists()
