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


def test_a_second_container_on_the_volume_is_refused(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from howdah.entrypoint import system
    from howdah.entrypoint.errors import EnvError

    first = system.lock_volume(str(tmp_path))
    try:
        with pytest.raises(EnvError) as info:
            system.lock_volume(str(tmp_path))
        assert "in use by another container" in info.value.line() and "\n" not in info.value.line()
        # another process (another container's entrypoint) is refused as well
        probe = ("import sys; from howdah.entrypoint import system\n"
                 "try: system.lock_volume(sys.argv[1])\n"
                 "except Exception as e: print(type(e).__name__); sys.exit(3)")
        done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 3 and "EnvError" in done.stdout
    finally:
        os.close(first)
    os.close(system.lock_volume(str(tmp_path)))  # released with the first container's processes
