"""The fence process (howdah/agent/fencer.py) against real processes: a
stand-in postmaster (a `sleep` running in the data directory), real signals,
and the script started the way the agent starts it."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from howdah.agent import fencer
from howdah.agent.fence import LeaseFile


@pytest.fixture
def postmaster(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen(["sleep", "60"], cwd=data)
    (data / "postmaster.pid").write_text(f"{proc.pid}\n{data}\n")
    yield proc
    proc.kill()
    proc.wait()


def test_a_lapsed_lease_stops_a_primary(tmp_path: Path, postmaster: subprocess.Popen[bytes]) -> None:
    lease = LeaseFile(tmp_path / "lease")
    lease.publish(time.monotonic() + 30)
    assert not fencer.fence_once(str(lease.path), str(tmp_path / "data"), time.monotonic())
    assert postmaster.poll() is None
    lease.publish(time.monotonic() - 1)
    assert fencer.fence_once(str(lease.path), str(tmp_path / "data"), time.monotonic())
    assert postmaster.wait(10) == -3  # SIGQUIT: immediate shutdown


def test_a_replica_or_no_leader_is_left_alone(tmp_path: Path, postmaster: subprocess.Popen[bytes]) -> None:
    data = tmp_path / "data"
    lease = LeaseFile(tmp_path / "lease")
    lease.publish(None)
    assert not fencer.fence_once(str(lease.path), str(data), time.monotonic())
    lease.publish(time.monotonic() - 1)
    (data / "standby.signal").touch()
    assert not fencer.fence_once(str(lease.path), str(data), time.monotonic())
    assert postmaster.poll() is None


def test_a_recycled_pid_is_not_a_postmaster(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    other = subprocess.Popen(["sleep", "60"], cwd=tmp_path)  # runs elsewhere
    try:
        (data / "postmaster.pid").write_text(f"{other.pid}\n")
        assert fencer.postmaster(str(data)) is None
    finally:
        other.kill()
        other.wait()


def test_the_script_runs_isolated_and_fences(tmp_path: Path, postmaster: subprocess.Popen[bytes]) -> None:
    """Started as the agent starts it (python -S -I, no site-packages): it
    fences, then exits once its agent is gone and nothing is left to guard."""
    agent = subprocess.Popen(["sleep", "60"])
    lease = LeaseFile(tmp_path / "lease")
    lease.publish(time.monotonic() + 1.0)
    proc = subprocess.Popen([sys.executable, "-S", "-I", fencer.__file__, str(lease.path),
                             str(tmp_path / "data"), str(agent.pid)], stderr=subprocess.PIPE)
    try:
        assert postmaster.wait(20) == -3
        agent.kill()
        agent.wait()
        assert proc.wait(20) == 0
        assert b"did not demote" in (proc.stderr.read() if proc.stderr else b"")
    finally:
        for p in (agent, proc):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-S", "-I", fencer.__file__, "x"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "usage" in res.stderr
