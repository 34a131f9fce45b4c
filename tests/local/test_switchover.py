"""Switchover through the DCS `failover` key, as patronictl and the REST API write it."""
from __future__ import annotations

import json
import os
import signal
import time
from typing import Callable

import pytest

from harness import LocalCluster
from harness.waiting import wait_for

pytestmark = pytest.mark.local


def test_switchover_hands_the_lock_to_the_named_member(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, ttl=20, loop_wait=2, retry_timeout=5)
    old = c.wait_leader(180)
    c.wait_streaming(2, 300)
    target = next(n for n in c.nodes if n is not old)
    old.sql("CREATE TABLE sw (v int)")
    assert c.etcd is not None
    client = c.dcs_client()
    with c.writer_probe(0.02) as probe:
        time.sleep(1)
        assert client.write_failover({"leader": old.name, "member": target.name})
        new = c.wait_leader(120, exclude=[old.name])
        assert new.name == target.name
        wait_for("a write on the new leader", lambda: any(
            w.node == target.name for w in list(probe.writes)), 60)
    writes = probe.snapshot()
    last_old = max(w.at for w in writes if w.node == old.name)
    first_new = min(w.at for w in writes if w.node == target.name)
    assert last_old < first_new, "the two primaries must never both take writes"
    print(f"switchover write gap: {first_new - last_old:.3f}s")
    wait_for(f"{old.name} back as a replica", lambda: old.role() == "replica", 180)
    c.wait_streaming(2, 300)
    # the new leader clears the key on its first cycle as leader (the old one may rejoin sooner)
    wait_for("the failover key cleared", lambda: json.loads(c.dcs_key("failover") or "{}") == {}, 60)


def test_switchover_to_a_replica_missing_wal_is_called_off(
        local_cluster: Callable[..., LocalCluster]) -> None:
    """The target's WAL receiver is frozen while the leader writes 8 MB: after
    stopping, the leader sees that the target lacks its last WAL (more than
    maximum_lag_on_failover), keeps the lock, clears the key and starts again
    as the primary with every row."""
    c = local_cluster(3, ttl=20, loop_wait=2, retry_timeout=5)
    old = c.wait_leader(180)
    c.wait_streaming(2, 300)
    target = next(n for n in c.nodes if n is not old)
    receiver = wait_for("the target's WAL receiver", lambda: target.sql(
        "SELECT pid FROM pg_stat_wal_receiver WHERE status = 'streaming'"), 60)[0][0]
    os.kill(receiver, signal.SIGSTOP)
    try:
        old.sql("CREATE TABLE missed AS SELECT g, repeat('x', 100) AS pad "
                "FROM generate_series(1, 60000) g")
        assert c.etcd is not None
        client = c.dcs_client()
        assert client.write_failover({"leader": old.name, "member": target.name})
        wait_for("the failover key cleared", lambda: json.loads(
            c.dcs_key("failover") or "{}") == {}, 120)
        wait_for(f"{old.name} writable again", old.is_writable, 120)
        assert c.leader() is old
        assert "switchover cancelled" in old.log_text(400)
        assert old.sql("SELECT count(*) FROM missed")[0][0] == 60000
    finally:
        os.kill(receiver, signal.SIGCONT)
    c.wait_streaming(2, 300)
    wait_for("the rows on the target", lambda: target.sql(
        "SELECT count(*) FROM missed")[0][0] == 60000, 120)
