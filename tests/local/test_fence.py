"""The fence on a real cluster (issue 10 item 6): the agent restarts it when it
dies, and it still stops the primary of a hung agent before another node writes."""
from __future__ import annotations

import os
import signal
from typing import Callable

import pytest

from harness import LocalCluster
from harness.hang import hang_leader_agent_and_check_writes
from harness.waiting import wait_for

pytestmark = pytest.mark.local

FAST = {"ttl": 8, "loop_wait": 1, "retry_timeout": 3}


def fence_pids(node: object) -> list[int]:
    return node.helper_pids()  # type: ignore[attr-defined, no-any-return]


def test_a_killed_fence_is_restarted_and_still_fences_a_hung_agent(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, **FAST)
    old = c.wait_leader(180)
    c.wait_streaming(2, 300)
    wait_for("the leader's fence process", lambda: len(fence_pids(old)) == 1, 60)
    first = fence_pids(old)[0]
    os.kill(first, signal.SIGKILL)
    wait_for("a new fence process", lambda: fence_pids(old) not in ([], [first]), 60)
    # only the fence can stop postgres while the agent hangs
    hang_leader_agent_and_check_writes(c, old)

