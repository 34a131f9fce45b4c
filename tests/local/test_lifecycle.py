"""Bootstrap hooks and crash handling on real clusters."""
from __future__ import annotations

import os
import signal
import stat
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from harness import LocalCluster
from harness.waiting import wait_for

pytestmark = pytest.mark.local


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)




def test_failed_post_bootstrap_cleans_up_and_frees_initialize(
        local_cluster: Callable[..., LocalCluster]) -> None:
    # the agents run as postgres: pytest's own tmp_path (mode 0700, root) is out of reach
    tmp_path = Path(tempfile.mkdtemp(prefix="howdah-post-bootstrap-"))
    os.chmod(tmp_path, 0o777)
    marker = tmp_path / "runs"
    hook = script(tmp_path / "post.sh", f"""
echo run >> {marker}
if [ "$(wc -l < {marker})" -lt 2 ]; then exit 1; fi
psql "$1" -c "CREATE TABLE made_by_post_bootstrap (id int)"
""")
    c = local_cluster(2, ttl=8, loop_wait=1, retry_timeout=3,
                      extra={"bootstrap": {"post_bootstrap": hook}})
    leader = c.wait_leader(240)
    assert leader.sql("SELECT count(*) FROM made_by_post_bootstrap") == [(0,)]
    assert len(marker.read_text().splitlines()) == 2, "the other node bootstraps once more"
    # the node whose bootstrap failed gave up and exited (as Patroni does); started
    # again (its supervisor's restart), it joins the new cluster as a replica
    failed = next(n for n in c.nodes if n is not leader)
    wait_for("the node whose bootstrap failed exits", lambda: not failed.is_running(), 120)
    assert failed.proc is not None and failed.proc.poll() == 1
    logs = c.dump_logs(400)
    assert "bootstrap failed: post_bootstrap" in logs
    assert (c.dcs_key("initialize") or "").isdigit()
    failed.start()
    c.wait_streaming(1, 300)


def test_crashed_postgres_is_restarted_in_place(local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(2, ttl=30, loop_wait=2, retry_timeout=5)
    leader = c.wait_leader(180)
    c.wait_streaming(1, 300)
    pid = leader.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for("postgres back on the leader", lambda: leader.postmaster_pid() not in (None, pid))
    wait_for("the leader writable again", leader.is_writable, 120)
    assert c.dcs_key("leader") == leader.name, "a crash under a live leader must not fail over"
    c.wait_streaming(1, 300)
