"""A postmaster.pid left by a killed container is stale unless its PID is a live postgres."""
from __future__ import annotations

from pathlib import Path

import pytest

from howdah.entrypoint.system import stale_pidfile


@pytest.mark.parametrize(
    "pidfile, comm, stale",
    [
        (None, None, False),                        # no file: nothing to do
        ("30\n/home/postgres/pgdata\n", None, True),  # PID not alive
        ("30\n/home/postgres/pgdata\n", "pgbouncer", True),  # PID reused by another program
        ("30\n/home/postgres/pgdata\n", "postgres", False),  # a live postmaster: keep it
        ("garbage", None, True),
    ],
)
def test_stale_pidfile(tmp_path: Path, pidfile: str | None, comm: str | None, stale: bool) -> None:
    data, proc = tmp_path / "data", tmp_path / "proc"
    data.mkdir()
    if pidfile is not None:
        (data / "postmaster.pid").write_text(pidfile)
    if comm is not None:
        (proc / "30").mkdir(parents=True)
        (proc / "30" / "comm").write_text(comm + "\n")
    assert stale_pidfile(str(data), proc) is stale
