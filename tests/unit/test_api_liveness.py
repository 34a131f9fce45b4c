"""Health answers never outlive the postmaster: ProcessWatch and the responder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Iterator

import pytest

from howdah.api import liveness
from howdah.api.liveness import ProcessWatch
from howdah.api.responder import StatusResponder
from howdah.core.status import NodeStatus

NOW = 1000.0


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("pidfd", [True, False])
def test_watch_sees_a_kill_at_once_even_before_the_reap(
        child: subprocess.Popen[bytes], pidfd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    watch = ProcessWatch()
    assert watch.alive(child.pid) and watch.alive(child.pid)
    child.kill()
    deadline = time.monotonic() + 30
    while watch.alive(child.pid):  # the kernel delivers SIGKILL asynchronously
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert not watch.alive(child.pid)
    watch.close()


def test_a_pid_that_does_not_exist_is_dead() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not ProcessWatch().alive(proc.pid)
    assert not liveness._proc_alive(proc.pid)


def test_replica_checks_turn_503_when_the_postmaster_dies(child: subprocess.Popen[bytes]) -> None:
    snap = NodeStatus(name="n2", scope="s", state="running", role="replica", pg_running=True,
                      postmaster_pid=child.pid, received_location=10, replayed_location=10,
                      replication_state="streaming", last_loop=NOW - 1, dcs_ok=True,
                      leader_optime=10)
    responder = StatusResponder(lambda: snap, lambda: NOW)
    assert [responder.reply(p).code for p in ("/replica", "/health", "/read-only", "/async")] \
        == [200, 200, 200, 200]
    child.kill()
    child.wait()
    codes = [responder.reply(p).code for p in ("/replica", "/health", "/read-only", "/async",
                                               "/readiness", "/liveness")]
    assert codes == [503, 503, 503, 503, 503, 200]
    body = json.loads(responder.reply("/patroni").body)
    assert body["state"] == "unknown" and body["role"] == "replica" and "xlog" not in body


def test_the_leader_keeps_its_lock_based_answers(child: subprocess.Popen[bytes]) -> None:
    # As Patroni: /primary and /leader follow the lock while the agent restarts postgres.
    snap = NodeStatus(name="n1", scope="s", state="running", role="primary", pg_running=True,
                      postmaster_pid=child.pid, xlog_location=10, lease_deadline=NOW + 20,
                      last_loop=NOW - 1, dcs_ok=True)
    responder = StatusResponder(lambda: snap, lambda: NOW)
    child.kill()
    child.wait()
    assert [responder.reply(p).code for p in ("/primary", "/leader", "/health")] == [200, 200, 503]
