"""Callbacks reach a user script as `<cmd> <action> <role> <scope>`, without blocking HA."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

from harness import LocalCluster
from harness.waiting import wait_for

pytestmark = pytest.mark.local


def recorder(sleep: int = 0) -> tuple[str, Path]:
    # the agents run as postgres: outside pytest's root-only tmp_path
    d = Path(tempfile.mkdtemp(prefix="howdah-callbacks-"))
    os.chmod(d, 0o777)
    out = d / "calls"
    script = d / "record.sh"
    script.write_text(f"#!/bin/sh\necho \"$1 $2 $3\" >> {out}\nsleep {sleep}\n")
    script.chmod(0o755)
    return str(script), out


def calls(out: Path) -> list[str]:
    try:
        return out.read_text().splitlines()
    except OSError:
        return []




def test_callbacks_follow_role_changes(local_cluster: Callable[..., LocalCluster]) -> None:
    script, out = recorder()
    cbs = {"postgresql": {"callbacks": {
        a: script for a in ("on_start", "on_stop", "on_role_change")}}}
    c = local_cluster(2, ttl=8, loop_wait=1, retry_timeout=3, start_agents=False, extra=cbs)
    n1, n2 = c.nodes
    c.start_agents([n1])
    assert c.wait_leader(180).name == "n1"
    wait_for("on_role_change primary", lambda: "on_role_change primary harness" in calls(out))
    first = calls(out)
    assert first.index("on_start primary harness") < first.index("on_role_change primary harness")
    c.start_agents([n2])
    c.wait_streaming(1, 300)
    wait_for("replica on_start", lambda: "on_start replica harness" in calls(out))
    n1.stop_sigterm(120)
    wait_for("n1's on_stop", lambda: "on_stop primary harness" in calls(out))
    assert c.wait_leader(120).name == "n2"
    wait_for("on_role_change primary on n2", lambda: calls(out).count(
        "on_role_change primary harness") == 2)


def test_slow_callback_does_not_delay_failover(local_cluster: Callable[..., LocalCluster]) -> None:
    script, out = recorder(sleep=600)
    cbs = {"postgresql": {"callbacks": {"on_start": script, "on_role_change": script}}}
    c = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3, extra=cbs)
    leader = c.wait_leader(180)
    c.wait_streaming(2, 300)
    leader.kill9()
    started = time.monotonic()
    new = c.wait_leader(120, exclude=[leader.name])
    assert new.is_writable()
    # a callback hanging for 600 s did not hold the loop: the new leader took
    # over well inside the callback's sleep
    assert time.monotonic() - started < 120
