"""Lock files left by a killed container whose pids now belong to other processes."""
import os
from pathlib import Path

from howdah.pg.ctl import PgPaths, clear_stale_locks


def test_stale_pid_and_socket_locks_are_removed(tmp_path: Path) -> None:
    data, sockets = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    sockets.mkdir()
    me = str(os.getpid())  # alive, but no postmaster
    (data / "postmaster.pid").write_text(f"{me}\n{data}\n")
    (sockets / ".s.PGSQL.5433.lock").write_text(f"{me}\n")
    (sockets / ".s.PGSQL.5434.lock").write_text(f"{me}\n")  # another port: not ours
    clear_stale_locks(PgPaths(data, Path("/usr/lib/postgresql/15/bin"), (str(sockets),), 5433))
    assert not (data / "postmaster.pid").exists()
    assert not (sockets / ".s.PGSQL.5433.lock").exists()
    assert (sockets / ".s.PGSQL.5434.lock").exists()
