"""Health answers never outlive the postmaster, side by side with Patroni 4.1.5.

After kill -9 of a replica's postmaster, Patroni answers GET /replica 503 because its
per-request query fails; Howdah checks the postmaster it last saw (a pidfd) on every
request. Howdah's side is asserted strictly: the very first answer after the
postmaster is dead is 503 and /patroni no longer says "running", although the HA loop
has not run since. Patroni's side is asserted as "answers 503" (eventually).
"""
from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable

import pytest

from harness import AgentNode, LocalCluster, procs, wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}


@pytest.mark.parametrize("kind", [pytest.param("patroni", marks=pytest.mark.patroni), "howdah"])
def test_replica_check_answers_503_as_soon_as_the_postmaster_dies(
        kind: str, streaming_pair: Callable[..., tuple[LocalCluster, AgentNode, AgentNode]]) -> None:
    cluster, leader, replica = streaming_pair(kind, **FAST)
    def running() -> bool:
        body = replica.api("/patroni")[1]
        return isinstance(body, dict) and body.get("state") == "running"
    wait_until(running, 60, what="replica reports running")
    pid = replica.postmaster_pid()
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while procs.alive(pid):
        assert time.monotonic() < deadline, "postmaster survived SIGKILL"
        time.sleep(0.001)
    if kind == "howdah":
        code, _ = replica.api("/replica")
        assert code == 503, "the first /replica answer after the postmaster died"
        code, body = replica.api("/patroni")
        assert code == 200 and body["state"] != "running" and body["role"] == "replica", body
        assert replica.api("/health")[0] == 503
    else:
        wait_until(lambda: replica.api("/replica")[0] == 503, 60, what="patroni /replica 503")
    assert replica.api("/liveness")[0] == 200  # the agent itself is fine
    # and the agent brings its replica back
    wait_until(lambda: replica.api("/replica")[0] == 200, 180, what="replica back (200)",
               details=cluster.dump_logs)
