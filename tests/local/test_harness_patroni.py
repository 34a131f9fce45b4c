"""The harness itself, proven against the real Patroni 4.1.5.

If these pass, LocalCluster/AgentNode drive a genuine Patroni cluster the way
the local tier drives Howdah: a failure in a Howdah test is then Howdah's.
Patroni refuses ttl < 20, hence the timings here.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest

from harness import LocalCluster, procs, wait_until

pytestmark = [pytest.mark.local, pytest.mark.patroni, pytest.mark.timeout(900)]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}


def test_three_patroni_nodes_form_one_leader_and_two_streaming_replicas(
        patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    cluster = local_cluster(3, kind="patroni", **FAST)
    leader = cluster.wait_leader(timeout=180)
    streaming = cluster.wait_streaming(2, timeout=300)

    others = sorted(n.name for n in cluster.nodes if n is not leader)
    assert streaming == others
    assert [n.name for n in cluster.primaries()] == [leader.name]
    assert sorted(n.name for n in cluster.replicas()) == others
    assert leader.role() == "primary"
    assert cluster.dcs_key("leader") == leader.name
    assert leader.is_writable()
    for node in cluster.nodes:
        if node is not leader:
            assert not node.is_writable(), f"{node.name} is a replica but took a write"
            wait_until(lambda: node.api("/replica")[0] == 200, 120,
                       what=f"{node.name} answers /replica 200")
            assert node.sql("SELECT pg_is_in_recovery()") == [(True,)]
            assert (node.rss_kb() or 0) > 0


def test_kill9_of_the_leader_fails_over_and_the_old_leader_rejoins(
        patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    cluster = local_cluster(3, kind="patroni", **FAST)
    old = cluster.wait_leader(timeout=180)
    cluster.wait_streaming(2, timeout=300)

    with cluster.writer_probe() as probe:
        assert probe.wait_write(time.monotonic(), timeout=60) is not None
        postmaster = old.postmaster_pid()
        assert postmaster is not None
        killed_at = time.monotonic()
        old.kill9()
        assert not old.is_running() and not procs.alive(postmaster)
        assert old.postmaster_pid() is None
        write = probe.wait_write(killed_at, exclude=[old.name], timeout=240)
    assert write is not None, "no other node accepted a write after the leader died"

    new = cluster.wait_leader(timeout=120, exclude=[old.name])
    assert new.name == write.node
    old.start()
    wait_until(lambda: old.name in cluster.streaming(new), 300,
               what="old leader streams from the new one", details=cluster.dump_logs)
    wait_until(lambda: old.role() == "replica", 120, what="old leader reports replica")
    assert not old.is_writable()


def test_cleanup_leaves_no_process_behind(
        patroni_venv: Path) -> None:
    with LocalCluster(2, kind="patroni", **FAST) as cluster:
        cluster.wait_leader(timeout=180)
        base = cluster.base
        assert base is not None and procs.pids_under(base)
        cluster.nodes[0].freeze()  # a stopped agent must not survive cleanup either
    assert procs.pids_under(base) == []
    assert not base.exists()
