"""The HA agent on a real 3-node cluster: PostgreSQL 15 and etcd on 127.0.0.1.

Timeouts are generous on purpose: these machines are shared and slow at
times.  The tests assert behaviour (who leads, who accepts writes), not speed.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable

import pytest

from harness import LocalCluster
from harness.hang import hang_leader_agent_and_check_writes
from harness.waiting import wait_for

pytestmark = pytest.mark.local

FAST = {"ttl": 8, "loop_wait": 1, "retry_timeout": 3}




def replica_has(node: Any, value: str) -> bool:
    try:
        return bool(node.sql("SELECT 1 FROM ha_t WHERE v = %s", (value,)))
    except Exception:  # noqa: BLE001 - not there yet, or postgres restarting
        return False


def test_bootstrap_replicate_failover_rejoin(local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, **FAST)
    leader = c.wait_leader(180)
    assert sorted(c.wait_streaming(2, 300)) == sorted(n.name for n in c.nodes if n is not leader)
    assert c.dcs_key("initialize"), "initialize must hold the system identifier"

    leader.sql("CREATE TABLE ha_t (v text)")
    leader.sql("INSERT INTO ha_t VALUES ('before')")
    for node in c.nodes:
        if node is not leader:
            wait_for(f"row on {node.name}", lambda n=node: replica_has(n, "before"))
            assert not node.is_writable(), f"{node.name} is a replica but accepted a write"

    old = leader
    old.kill9()
    new = c.wait_leader(180, exclude=[old.name])
    assert new.is_writable()
    assert replica_has(new, "before"), "a write acknowledged before the failover was lost"
    new.sql("INSERT INTO ha_t VALUES ('after')")

    old.start()
    wait_for(f"{old.name} back as a replica", lambda: old.role() == "replica", 240)
    wait_for(f"{old.name} has the new row", lambda: replica_has(old, "after"), 240)
    assert not old.is_writable()
    assert [n.name for n in c.primaries()] == [new.name]


def test_sigterm_of_leader_hands_over_without_waiting_for_ttl(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, ttl=60, loop_wait=5, retry_timeout=10)
    leader = c.wait_leader(180)
    c.wait_streaming(2, 300)
    assert leader.stop_sigterm(120) == 0
    assert c.dcs_key("leader") != leader.name, "the leader key must be released at shutdown"
    assert c.dcs_key(f"members/{leader.name}") is None, "the member key must be removed"
    assert leader.postmaster_pid() is None, "postgres must be stopped"
    # The ttl is 60 s: a new leader well inside it shows the planned stop did not wait.
    new = c.wait_leader(40, exclude=[leader.name])
    assert new.is_writable()


def test_frozen_etcd_makes_leader_stop_writes(local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(2, **FAST)
    leader = c.wait_leader(180)
    c.wait_streaming(1, 300)
    assert leader.is_writable()
    assert c.etcd is not None
    c.etcd.freeze()
    frozen_at = time.monotonic()
    try:
        wait_for("the leader to stop accepting writes", lambda: not leader.is_writable(),
                 timeout=FAST["ttl"] + 20, every=0.1)
        stopped_after = time.monotonic() - frozen_at
        code, _ = leader.api("/primary")
        assert code != 200, "/primary must not answer 200 once the lease is gone"
    finally:
        c.etcd.thaw()
    # Behaviour, with slack for a slow machine: writes stopped within the lease.
    assert stopped_after < FAST["ttl"] + 5, f"writes stopped only after {stopped_after:.1f}s"
    c.wait_leader(180)


def test_nofailover_member_never_promotes(local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(2, start_agents=False, tags={"n2": {"nofailover": True}}, **FAST)
    n1, n2 = c.nodes
    c.start_agents([n1])
    assert c.wait_leader(180).name == "n1"
    c.start_agents([n2])
    c.wait_streaming(1, 300)
    n1.kill9()
    time.sleep(FAST["ttl"] * 3)
    assert n2.role() == "replica" and not n2.is_writable()
    assert c.dcs_key("leader") is None


def test_lagging_replica_does_not_promote(local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(2, start_agents=False, maximum_lag_on_failover=1024 * 1024, **FAST)
    n1, n2 = c.nodes
    c.start_agents([n1])
    assert c.wait_leader(180).name == "n1"
    c.start_agents([n2])
    c.wait_streaming(1, 300)
    pid = n2.sql("SELECT pid FROM pg_stat_wal_receiver")[0][0]
    os.kill(pid, signal.SIGSTOP)  # the replica stops receiving WAL
    try:
        n1.sql("CREATE TABLE big AS SELECT g, repeat('x', 500) AS pad "
               "FROM generate_series(1, 40000) g")
        # let the leader publish its new optime in the status key
        wait_for("status optime past the lag limit",
                 lambda: _status_optime(c) - _received(n2) > 1024 * 1024, 60)
        n1.kill9()
        time.sleep(FAST["ttl"] * 3)
        assert n2.role() == "replica" and not n2.is_writable()
        assert c.dcs_key("leader") is None
    finally:
        os.kill(pid, signal.SIGCONT)


def _status_optime(c: LocalCluster) -> int:
    import json
    raw = c.dcs_key("status")
    return int(json.loads(raw)["optime"]) if raw else 0


def _received(node: Any) -> int:
    code, body = node.api("/patroni")
    xlog = body.get("xlog", {}) if isinstance(body, dict) else {}
    return int(xlog.get("received_location") or 0)


def test_hung_agent_is_fenced_before_a_new_leader_takes_writes(
        local_cluster: Callable[..., LocalCluster]) -> None:
    """DESIGN invariant 1 with the agent itself stopped: the fence process ends
    the old primary's writes before the new leader takes any."""
    c = local_cluster(3, **FAST)
    old = c.wait_leader(180)
    c.wait_streaming(2, 300)
    hang_leader_agent_and_check_writes(c, old)


def test_a_returning_replica_creates_its_own_slot_on_the_leader(
        local_cluster: Callable[..., LocalCluster]) -> None:
    """A replica whose slot the leader dropped while it was away streams again
    without waiting for the leader's agent: here that agent is frozen (its
    postgres runs on, its lease lasts), so only the returning replica can have
    created the slot.  member_slots_ttl 0: the slot goes with the member key."""
    c = local_cluster(3, ttl=60, loop_wait=2, retry_timeout=5,
                      extra={"bootstrap": {"dcs": {"member_slots_ttl": 0}}})
    leader = c.wait_leader(180)
    c.wait_streaming(2, 300)
    replica = next(n for n in c.nodes if n is not leader)
    slot = replica.name
    replica.stop_sigterm()
    wait_for("the leader to drop the departed member's slot", lambda: not leader.sql(
        "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)), 120)
    leader.freeze()
    try:
        replica.start()
        wait_for(f"{replica.name} streaming from the leader", lambda: replica.name in
                 c.streaming(leader), 60)
        assert leader.sql("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                          (slot,)) == [(True,)]
    finally:
        leader.thaw()
    c.wait_streaming(2, 300)
