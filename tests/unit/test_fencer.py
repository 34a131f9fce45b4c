"""The fence process (howdah/agent/fencer.py) against real processes: a
stand-in postmaster (a `sleep` running in the data directory), real signals,
and the script started the way the agent starts it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from howdah.agent import fencer
from howdah.agent.fence import Fence, LeaseFile


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


def test_a_replica_is_left_alone(tmp_path: Path, postmaster: subprocess.Popen[bytes]) -> None:
    data = tmp_path / "data"
    lease = LeaseFile(tmp_path / "lease")
    (data / "standby.signal").touch()
    lease.publish(None)
    assert not fencer.fence_once(str(lease.path), str(data), time.monotonic())
    lease.publish(time.monotonic() - 1)
    assert not fencer.fence_once(str(lease.path), str(data), time.monotonic())
    assert postmaster.poll() is None


@pytest.mark.parametrize("content", ["none", None, "", "garbage 1", "nan 1"])
def test_no_proof_of_a_lease_stops_a_primary(tmp_path: Path, postmaster: subprocess.Popen[bytes],
                                             content: str | None) -> None:
    """Fails closed (issue 10 item 6): "none", a missing, empty or unreadable
    file all mean no lease, so a primary must not run."""
    lease = tmp_path / "lease"
    if content is not None:
        lease.write_text(content)
    assert fencer.fence_once(str(lease), str(tmp_path / "data"), time.monotonic())
    assert postmaster.wait(10) == -3


def test_a_deadline_from_before_a_reboot_is_no_proof(tmp_path: Path,
                                                     postmaster: subprocess.Popen[bytes]) -> None:
    lease = tmp_path / "lease"
    lease.write_text(f"{time.monotonic() + 3600!r} 1 another-boot\n")
    assert fencer.fence_once(str(lease), str(tmp_path / "data"), time.monotonic())
    assert postmaster.wait(10) == -3


def test_the_agent_keeps_its_predecessors_deadline_at_start(tmp_path: Path) -> None:
    """A restarted agent neither disarms the fence (the old code wrote "none"
    and the fence then ignored a primary) nor drops a valid deadline."""
    path = tmp_path / "lease"
    first = LeaseFile(path)
    deadline = time.monotonic() + 30
    first.publish(deadline)
    assert LeaseFile(path).adopt() == deadline
    assert fencer.read_deadline(str(path)) == deadline
    first.publish(time.monotonic() - 5)  # it lapsed: nothing to keep
    assert LeaseFile(path).adopt() is None
    assert fencer.read_lease(str(path))[0] == fencer.EXPIRED
    path.unlink()
    assert LeaseFile(path).adopt() is None and path.exists()


def test_the_fence_is_started_again_when_it_dies(tmp_path: Path) -> None:
    fence = Fence(tmp_path / "lease", tmp_path / "data")
    (tmp_path / "data").mkdir()
    LeaseFile(tmp_path / "lease").publish(None)
    try:
        assert fence.ensure()
        first = fence.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        fence.proc.wait(10)  # type: ignore[union-attr]
        assert fence.ensure()
        assert fence.pid is not None and fence.pid != first
    finally:
        fence.stop()


def test_a_fence_that_cannot_start_fails_closed(tmp_path: Path) -> None:
    def broken(lease: Path, data: Path) -> subprocess.Popen[bytes]:
        raise OSError(2, "No such file or directory")
    assert not Fence(tmp_path / "lease", tmp_path / "data", broken).ensure()


def test_an_old_fence_leaves_once_a_newer_agent_writes_the_lease(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    LeaseFile(tmp_path / "lease").publish(None)  # written by this (live) process
    assert fencer.done(str(tmp_path / "lease"), str(data), gone.pid)
    assert not fencer.done(str(tmp_path / "lease"), str(data), os.getpid())


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
    lease = LeaseFile(tmp_path / "lease")  # as the agent writes it: its pid, this boot
    lease.path.write_text(f"{time.monotonic() + 1.0!r} {agent.pid} {fencer.boot_id()}\n")
    proc = subprocess.Popen([sys.executable, "-S", "-I", fencer.__file__, str(lease.path),
                             str(tmp_path / "data"), str(agent.pid)], stderr=subprocess.PIPE)
    try:
        assert postmaster.wait(20) == -3
        agent.kill()
        agent.wait()
        assert proc.wait(20) == 0
        assert b"stopping it" in (proc.stderr.read() if proc.stderr else b"")
    finally:
        for p in (agent, proc):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-S", "-I", fencer.__file__, "x"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "usage" in res.stderr
