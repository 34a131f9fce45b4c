"""synchronous_mode: acknowledged writes are never lost, only a sync standby takes over."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any, Callable

import pytest

from harness import LocalCluster, procs
from harness.config import PG_BIN
from harness.waiting import wait_for
from howdah.core.timeline import parse_lsn

pytestmark = pytest.mark.local


def test_only_the_synchronous_standby_takes_over(local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3,
                      extra={"bootstrap": {"dcs": {"synchronous_mode": True}}})
    leader = c.wait_leader(180)
    c.wait_streaming(2, 300)
    wait_for("a synchronous standby in the sync key", lambda: c.dcs_json("sync").get("sync_standby"))
    key = c.dcs_json("sync")
    assert key["leader"] == leader.name
    sync_name = key["sync_standby"]
    rows = leader.sql("SELECT application_name, sync_state FROM pg_stat_replication")
    assert (sync_name, "sync") in rows
    wait_for(f"/sync on {sync_name}", lambda: c.node(sync_name).api("/sync")[0] == 200, 30)
    others = [n for n in c.nodes if n.name not in (sync_name, leader.name)]
    assert all(n.api("/async")[0] == 200 for n in others)
    leader.sql("CREATE TABLE acked (v int)")
    leader.sql("INSERT INTO acked SELECT generate_series(1, 100)")
    leader.kill9()
    new = c.wait_leader(120, exclude=[leader.name])
    assert new.name == sync_name, "only the synchronous standby may take over"
    assert new.sql("SELECT count(*) FROM acked") == [(100,)]


def _sync_cluster(local_cluster: Callable[..., LocalCluster]) -> tuple[LocalCluster, Any, str]:
    """A streaming 3-node cluster in synchronous_mode: (cluster, leader, its sync standby's name)."""
    c = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3,
                      extra={"bootstrap": {"dcs": {"synchronous_mode": True}}})
    leader = c.wait_leader(180)
    c.wait_streaming(2, 300)
    wait_for("a synchronous standby in the sync key",
             lambda: c.dcs_json("sync").get("leader") == leader.name and c.dcs_json("sync").get("sync_standby"))
    return c, leader, str(c.dcs_json("sync")["sync_standby"])


def _received(node: Any) -> int:
    rows = node.sql("SELECT COALESCE(pg_last_wal_receive_lsn() - '0/0', 0)::bigint")
    return int(rows[0][0])


def _api_received(node: Any) -> int:
    code, body = node.api("/patroni")
    xlog = body.get("xlog") if code == 200 and isinstance(body, dict) else None
    return int((xlog or {}).get("received_location") or 0)


def test_async_replica_ahead_of_the_sync_standby_does_not_block_failover(
        local_cluster: Callable[..., LocalCluster]) -> None:
    """Issue 10 item 3: the asynchronous replica received a few bytes the
    synchronous standby did not (a commit with synchronous_commit=local while
    the leader's WAL sender to the standby was stopped); the leader dies.  Only the sync
    standby may promote, and it must: before the fix nobody did."""
    c, leader, sync_name = _sync_cluster(local_cluster)
    sync = c.node(sync_name)
    other = next(n for n in c.nodes if n.name not in (sync_name, leader.name))
    wait_for("the sync standby confirmed in pg_stat_replication",
             lambda: (sync_name, "sync") in leader.sql(
                 "SELECT application_name, sync_state FROM pg_stat_replication"))
    leader.sql("CREATE TABLE acked (v int)")
    leader.sql("INSERT INTO acked SELECT generate_series(1, 10)")
    # the leader's WAL sender to the sync standby stops sending (a receiver
    # stopped instead would still read what the kernel buffered)
    sender = int(leader.sql("SELECT pid FROM pg_stat_replication WHERE application_name = %s",
                            (sync_name,))[0][0])
    os.kill(sender, signal.SIGSTOP)
    try:
        conn = leader.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET synchronous_commit = local")
                cur.execute("CREATE TABLE not_acked AS SELECT generate_series(1, 1000) AS v")
                cur.execute("SELECT pg_current_wal_lsn() - '0/0'")
                end = int(cur.fetchone()[0])
        finally:
            conn.close()
        wait_for(f"{other.name} received the unacknowledged WAL",
                 lambda: _received(other) >= end, 60)
        wait_for(f"{other.name}'s /patroni reporting it", lambda: _api_received(other) >= end, 60)
        assert _received(sync) < end
        leader.kill9()
    finally:
        try:
            os.kill(sender, signal.SIGCONT)
        except ProcessLookupError:
            pass
    new = c.wait_leader(120, exclude=[leader.name])
    assert new.name == sync_name, "only the synchronous standby may take over"
    assert new.sql("SELECT count(*) FROM acked") == [(10,)]


def _in_recovery(node: Any) -> bool | None:
    try:
        conn = node.connect(connect_timeout=1)
    except Exception:  # noqa: BLE001 - not up
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            return bool(cur.fetchone()[0])
    except Exception:  # noqa: BLE001
        return None
    finally:
        conn.close()


def test_new_leader_owns_the_sync_key_before_it_can_acknowledge_a_commit(
        local_cluster: Callable[..., LocalCluster]) -> None:
    """Issue 10 item 2: the sync key must name the new leader (no standby yet)
    before its postgres leaves recovery; before the fix it was rewritten a
    cycle after the promotion, while the node already took commits that the
    key's old pair did not have.  Samples are taken in that order: first is
    it a primary, then the key, so a correct agent can never fail this."""
    c, leader, sync_name = _sync_cluster(local_cluster)
    sync = c.node(sync_name)
    leader.kill9()
    deadline = time.monotonic() + 120
    seen: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if _in_recovery(sync) is False:
            seen = c.dcs_json("sync")
            break
        time.sleep(0.01)
    assert seen is not None, "the synchronous standby never promoted\n" + c.dump_logs(40)
    assert seen.get("leader") == sync.name, f"primary while the sync key still said {seen}"
    assert c.wait_leader(60).name == sync.name


STRICT: dict[str, Any] = {"bootstrap": {"dcs": {
    "synchronous_mode": True, "synchronous_mode_strict": True,
    "postgresql": {"use_pg_rewind": True}}}}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", [pytest.param("patroni", marks=pytest.mark.patroni), "howdah"])
def test_full_restart_the_sync_standby_leads_though_the_former_leader_is_ahead(
        kind: str, streaming_pair: Callable[..., tuple[LocalCluster, Any, Any]]) -> None:
    """Issue 10 (strict campaign, full_restart): the synchronous standby stopped
    a moment before the leader, which then wrote WAL it never got (its shutdown
    checkpoint; in the campaign also commits that waited for the standby and were
    never acknowledged).  Started again while the former leader is still down, the
    standby named in /sync takes the lock without waiting for it, in Patroni 4.1.5
    as in Howdah: every acknowledged commit is on it.  The former leader then
    rejoins as its replica (rewound)."""
    c, leader, sync = streaming_pair(kind, ttl=10, loop_wait=1, retry_timeout=3, extra=STRICT)
    wait_for("the standby in the sync key", lambda: c.dcs_json("sync").get("sync_standby")
             == sync.name and c.dcs_json("sync").get("leader") == leader.name, 60)
    leader.sql("CREATE TABLE acked (v int)")
    leader.sql("INSERT INTO acked SELECT generate_series(1, 10)")
    leader.freeze()  # the leader's agent can change /sync no more
    sync.kill9()
    ahead_from = int(leader.sql("SELECT pg_current_wal_lsn() - '0/0'")[0][0])
    postmaster = leader.postmaster_pid()
    assert postmaster is not None
    os.kill(postmaster, signal.SIGINT)  # fast shutdown: a checkpoint the standby never gets
    assert procs.wait_gone([postmaster], 60)
    leader.kill9()
    assert _checkpoint_lsn(leader) >= ahead_from, "the former leader wrote nothing more"
    assert c.dcs_json("sync").get("sync_standby") == sync.name
    sync.start()
    wait_for(f"{kind}: {sync.name} leads", lambda: c.dcs_key("leader") == sync.name
             and sync.api("/primary")[0] == 200, 120)
    assert sync.sql("SELECT count(*) FROM acked") == [(10,)]
    leader.start()
    wait_for(f"{kind}: {leader.name} streams from {sync.name}",
             lambda: leader.name in c.streaming(sync), 240)


def _checkpoint_lsn(node: Any) -> int:
    """The latest checkpoint's location in node's pg_control, in bytes."""
    out = subprocess.run([str(PG_BIN / "pg_controldata"), str(node.data_dir)], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("Latest checkpoint location:"))
    return parse_lsn(line.split(":", 1)[1])
