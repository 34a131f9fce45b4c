"""Failsafe mode, side by side with Patroni 4.1.5: the /failsafe key, GET and POST
/failsafe, and DCS outages (etcd SIGSTOPped for longer than ttl) with failsafe_mode on.

Every scenario runs the same YAML on both agents and asserts the same observable
outcome: who is primary (pg_is_in_recovery, writes), whether postgres restarted
(pg_postmaster_start_time), the timeline, the leader key after the outage,
failsafe_mode_is_active in the REST bodies and the metric. Only end states are
awaited (generous timeouts); how fast either agent reacts is not asserted.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from contextlib import contextmanager

import pytest

from harness import AgentNode, LocalCluster, TestCA, wait_until
from harness.config import API_AUTH
from harness.tls import have_openssl

pytestmark = [pytest.mark.local, pytest.mark.timeout(900)]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
FAILSAFE = {"bootstrap": {"dcs": {"failsafe_mode": True}}}
OUTAGE = FAST["ttl"] + 10  # longer than ttl: the leader key expires during the outage
KINDS = ["howdah", pytest.param("patroni", marks=pytest.mark.patroni)]


def _key(cluster: LocalCluster) -> dict[str, Any]:
    raw = cluster.dcs_key("failsafe")
    return json.loads(raw) if raw else {}


def _wait_failsafe_key(cluster: LocalCluster, nodes: list[AgentNode]) -> None:
    want = {n.name: f"{n.api_url}/patroni" for n in nodes}
    wait_until(lambda: _key(cluster) == want, 120, what="/failsafe lists every member",
               details=lambda: f"{_key(cluster)}\n" + cluster.dump_logs(40))


def _start_time(node: AgentNode) -> Any:
    return node.sql("SELECT pg_postmaster_start_time()")[0][0]


def _timeline(node: AgentNode) -> int:
    return int(node.sql("SELECT timeline_id FROM pg_control_checkpoint()")[0][0])


def _active(node: AgentNode, path: str = "/patroni") -> bool:
    code, body = node.api(path)
    return isinstance(body, dict) and body.get("failsafe_mode_is_active") is True


def _metric(node: AgentNode) -> float | None:
    code, body = node.api("/metrics")
    for line in str(body or "").splitlines():
        if line.startswith("patroni_failsafe_mode_is_active{"):
            return float(line.rsplit(" ", 1)[1])
    return None


@contextmanager
def _etcd_frozen(cluster: LocalCluster) -> Iterator[float]:
    assert cluster.etcd is not None
    cluster.etcd.freeze()
    try:
        yield time.monotonic()
    finally:
        cluster.etcd.thaw()


def _ready(kind: str, n: int, local_cluster: Callable[..., LocalCluster],
           extra: dict[str, Any] | None = None, **kw: Any) -> tuple[LocalCluster, AgentNode]:
    cluster = local_cluster(n, kind=kind, extra={**FAILSAFE, **(extra or {})}, **FAST, **kw)
    leader = cluster.wait_leader(timeout=180)
    if n > 1:
        cluster.wait_streaming(n - 1, timeout=300)
    _wait_failsafe_key(cluster, cluster.nodes)
    return cluster, leader


def _survives_outage(cluster: LocalCluster, leader: AgentNode) -> None:
    """etcd frozen for OUTAGE s: the leader keeps serving writes as the same postmaster,
    says failsafe_mode_is_active, its replicas stay replicas and receive its writes;
    after the thaw it holds the leader key again, on the same timeline (no failover)."""
    replicas = [n for n in cluster.nodes if n is not leader]
    started, timeline = _start_time(leader), _timeline(leader)
    history = cluster.dcs_key("history")
    with _etcd_frozen(cluster) as frozen_at:
        wait_until(lambda: _active(leader, "/primary"), OUTAGE, interval=0.5,
                   what="failsafe_mode_is_active in the leader's GET /primary",
                   details=lambda: str(leader.api("/primary")) + cluster.dump_logs(40))
        assert _metric(leader) == 1.0
        for replica in replicas:
            wait_until(lambda: _active(replica), 30, interval=0.5,
                       what=f"failsafe_mode_is_active on {replica.name}",
                       details=lambda: str(replica.api("/patroni")))
        rest = OUTAGE - (time.monotonic() - frozen_at)
        if rest > 0:
            time.sleep(rest)
        # the outage is now longer than ttl: still the primary, same postmaster
        assert leader.is_writable(), "the leader stopped taking writes during the outage"
        assert leader.api("/primary")[0] == 200
        assert _start_time(leader) == started, "postgres restarted on the leader"
        for replica in replicas:
            assert replica.sql("SELECT pg_is_in_recovery()") == [(True,)]
            marker = f"during the outage, seen by {replica.name}"
            leader.sql("CREATE TABLE IF NOT EXISTS outage (v text)")
            leader.sql("INSERT INTO outage VALUES (%s)", (marker,))
            wait_until(lambda: replica.sql("SELECT count(*) FROM outage WHERE v = %s",
                                           (marker,)) == [(1,)], 30,
                       what=f"{replica.name} replicates the leader during the outage")
    wait_until(lambda: cluster.dcs_key("leader") == leader.name, 120,
               what=f"{leader.name} holds the leader key again after the thaw",
               details=lambda: cluster.dump_logs(60))
    wait_until(lambda: not _active(leader), FAST["ttl"] * 3, interval=0.5,
               what="failsafe_mode_is_active gone from the leader once the DCS is back")
    assert _metric(leader) == 0.0
    assert _start_time(leader) == started and _timeline(leader) == timeline
    assert cluster.dcs_key("history") == history, "no failover was recorded"
    assert [n.name for n in cluster.primaries()] == [leader.name]
    for replica in replicas:
        assert replica.sql("SELECT pg_is_in_recovery()") == [(True,)]


@pytest.mark.parametrize("kind", KINDS)
def test_the_leader_publishes_every_member_in_the_failsafe_key(
        kind: str, patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    cluster, _ = _ready(kind, 2, local_cluster)
    want = {n.name: f"{n.api_url}/patroni" for n in cluster.nodes}
    for node in cluster.nodes:
        wait_until(lambda: node.api("/failsafe") == (200, want), 60,
                   what=f"GET /failsafe on {node.name}",
                   details=lambda: f"{node.api('/failsafe')}")


@pytest.mark.parametrize("kind", KINDS)
def test_post_failsafe(kind: str, patroni_venv: Path,
                       local_cluster: Callable[..., LocalCluster]) -> None:
    """POST /failsafe needs the REST credentials; the primary refuses it (500 "Running as
    a leader"), a replica accepts it (200 "Accepted"); with failsafe_mode off: 502."""
    cluster, leader = _ready(kind, 2, local_cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    ping = {"name": leader.name, "conn_url": f"postgres://127.0.0.1:{leader.pg_port}/postgres",
            "api_url": f"{leader.api_url}/patroni"}
    assert replica.api("/failsafe", "POST", ping, auth=False)[0] == 401
    assert leader.api("/failsafe", "POST", ping) == (500, "Running as a leader")
    assert replica.api("/failsafe", "POST", ping) == (200, "Accepted")
    wait_until(lambda: _active(replica), 30, what="the replica reports failsafe_mode_is_active")
    code = leader.api("/config", "PATCH", {"failsafe_mode": False})[0]
    assert code == 200
    wait_until(lambda: replica.api("/failsafe", "POST", ping)[0] == 502, 60,
               what="POST /failsafe answers 502 once failsafe_mode is off")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nodes", [1, 2], ids=["primary-alone", "leader-and-replica"])
def test_members_keep_their_roles_while_etcd_is_frozen(
        kind: str, nodes: int, patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    cluster, leader = _ready(kind, nodes, local_cluster)
    _survives_outage(cluster, leader)


@pytest.mark.skipif(not have_openssl(), reason="needs the openssl CLI")
@pytest.mark.parametrize("kind", KINDS)
def test_failsafe_over_mutual_tls(kind: str, patroni_venv: Path,
                                  local_cluster: Callable[..., LocalCluster]) -> None:
    """REST on https with verify_client: required and no Basic credentials: the leader's
    POST /failsafe gets through only with the member client certificate (ctl.certfile)."""
    with TestCA() as ca:
        server = ca.issue("member")
        client = ca.issue("ctl", client=True, server=False)
        tls = {"restapi": {"certfile": server.cert, "keyfile": server.key, "cafile": ca.cert,
                           "verify_client": "required", "authentication": None},
               "ctl": {"certfile": client.cert, "keyfile": client.key, "cacert": ca.cert}}
        cluster, leader = _ready(kind, 2, local_cluster, extra=tls)
        _survives_outage(cluster, leader)


@pytest.mark.parametrize("kind", KINDS)
def test_three_nodes_keep_their_roles_while_etcd_is_frozen(
        kind: str, patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    cluster, leader = _ready(kind, 3, local_cluster)
    _survives_outage(cluster, leader)
    # what patronictl (4.1.5) shows afterwards: the same leader, replicas streaming, one timeline
    def listed() -> dict[str, dict[str, str]] | None:
        rows = _patronictl(patroni_venv, leader, "list", "-f", "tsv")
        lines = [ln.split("\t") for ln in rows.splitlines() if "\t" in ln]
        table = {r[lines[0].index("Member")]: dict(zip(lines[0], r)) for r in lines[1:]}
        ok = len(table) == 3 and table.get(leader.name, {}).get("Role") == "Leader" and all(
            r["Role"] == "Replica" and r["State"] == "streaming"
            for name, r in table.items() if name != leader.name)
        return table if ok else None
    table = wait_until(listed, 120, what="patronictl list: same leader, two streaming replicas")
    assert {r["TL"] for r in table.values()} == {"1"}
    assert "failsafe_mode: true" in _patronictl(patroni_venv, leader, "show-config")


def _fence_deadline(node: AgentNode) -> float | None:
    """The lease deadline a Howdah agent published for its fence (CLOCK_MONOTONIC,
    the clock of time.monotonic here), None when it holds none."""
    from howdah.agent.fencer import read_deadline
    return read_deadline(str(node.data_dir.parent / f".howdah-{node.name}.lease"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_replica_lost_during_the_outage_demotes_the_leader(
        kind: str, patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    """A member of /failsafe that does not answer POST /failsafe: the leader stops
    taking writes; once etcd is back it leads again (the only member left).

    Deliberate difference: Patroni 4.1.5 demotes at the first round a member does not
    answer; Howdah keeps the primary until its last fully confirmed round is
    loop_wait + retry_timeout old (one lost answer costs no demotion).  That is as
    safe: a member that accepted a round promised not to race for ttl from when the
    call reached it, and a round not every member confirmed renews nothing, so the
    fence deadline stays below the last confirmation + ttl.  Asserted on Howdah's
    lease file: after the replica is killed (its last confirmation is older than
    that), no fence deadline outlives kill time + ttl."""
    cluster, leader = _ready(kind, 2, local_cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    deadlines: list[float | None] = []

    def writable() -> bool:
        if kind == "howdah":
            deadlines.append(_fence_deadline(leader))
        return leader.is_writable()
    with _etcd_frozen(cluster):
        wait_until(lambda: _active(leader, "/primary"), OUTAGE, interval=0.5,
                   what="failsafe_mode_is_active on the leader",
                   details=lambda: cluster.dump_logs(40))
        replica.kill9()
        killed = time.monotonic()
        wait_until(lambda: not writable(), FAST["ttl"] + 20, interval=0.5,
                   what="the leader stops taking writes without its replica's answer",
                   details=lambda: cluster.dump_logs(60))
        wait_until(lambda: leader.api("/primary")[0] != 200, 30, interval=0.5,
                   what="/primary stops answering 200")
        time.sleep(5)
        assert not writable()
    if kind == "howdah":
        held = [d for d in deadlines if d is not None]
        assert held, f"no fence deadline published during failsafe mode: {deadlines}"
        assert max(held) <= killed + FAST["ttl"], (
            f"a fence deadline {max(held) - killed:.1f}s after the kill outlives the "
            f"replica's last confirmation + ttl ({FAST['ttl']}s): {deadlines}")
    wait_until(lambda: cluster.leader() is leader, 240,
               what=f"{leader.name} leads again after the thaw",
               details=lambda: cluster.dump_logs(60))


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_replica_missing_from_the_failsafe_key_is_not_promoted(
        kind: str, patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    """A one-node cluster (/failsafe = {n1}); n1 stops; n2 starts with a copy of n1's data
    while nobody leads: it runs as a replica and never takes the leader key."""
    cluster = local_cluster(2, kind=kind, extra=FAILSAFE, start_agents=False, **FAST)
    n1, n2 = cluster.nodes
    cluster.start_agents([n1])
    assert cluster.wait_leader(180) is n1
    _wait_failsafe_key(cluster, [n1])
    _copy_data(n1, n2)
    assert n1.stop_sigterm(120) == 0
    assert _key(cluster) == {n1.name: f"{n1.api_url}/patroni"}
    cluster.start_agents([n2])
    wait_until(lambda: n2.role() == "replica" and n2.is_running(), 180,
               what="n2 runs as a replica", details=lambda: cluster.dump_logs(40))
    time.sleep(FAST["ttl"] * 2)
    assert n2.sql("SELECT pg_is_in_recovery()") == [(True,)]
    assert cluster.dcs_key("leader") is None
    assert n2.api("/primary")[0] == 503


def _patronictl(venv: Path, node: AgentNode, *args: str) -> str:
    import subprocess
    res = subprocess.run([str(venv / "bin" / "patronictl"), "-c", str(node.config_path), *args],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"patronictl {' '.join(args)}: {res.stdout}{res.stderr}"
    return res.stdout


def _copy_data(src: AgentNode, dst: AgentNode) -> None:
    import os
    import subprocess

    from harness.config import PG_BIN, REPLICATION
    env = {**os.environ, "PGPASSWORD": REPLICATION[1]}
    subprocess.run(["rm", "-rf", str(dst.data_dir)], check=True)
    dst.workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(src.pg_port),
                    "-U", REPLICATION[0], "-D", str(dst.data_dir), "-X", "stream", "-c", "fast"],
                   check=True, env=env, timeout=300)
    subprocess.run(["chown", "-R", "postgres:postgres", str(dst.workdir)], check=True)
    os.chmod(dst.data_dir, 0o700)
    assert API_AUTH  # the agents' REST credentials are in every node's config


@pytest.mark.parametrize("kind", KINDS)
def test_replica_slots_advance_from_the_leaders_post_failsafe_during_the_outage(
        kind: str, patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    """/status cannot be read while etcd is frozen: the leader sends its slot positions
    in the POST /failsafe body (Patroni 4.1.5: "slots", as in /status) and the replica
    advances its copies from them: the permanent logical slot to the position a consumer
    confirmed on the leader during the outage, its slot for the leader past the writes."""
    from test_slots import dcs_extra, slots_of, wait_slots
    extra = dcs_extra(failsafe_mode=True)
    cluster, leader = _ready(kind, 2, local_cluster, extra=extra)
    replica = next(n for n in cluster.nodes if n is not leader)
    wait_slots(cluster, replica, {leader.name, "perm_phys", "perm_log"}, timeout=240)
    leader.sql("CREATE TABLE fs_slots (v text)")
    with _etcd_frozen(cluster):
        wait_until(lambda: _active(leader, "/primary") and _active(replica), OUTAGE,
                   interval=0.5, what="failsafe mode active on both nodes",
                   details=lambda: cluster.dump_logs(40))
        leader.sql("INSERT INTO fs_slots SELECT 'during the outage ' || g"
                   " FROM generate_series(1, 1000) g")
        leader.sql("SELECT count(*) FROM pg_logical_slot_get_changes('perm_log', NULL, NULL)")
        confirmed = slots_of(leader)["perm_log"]["confirmed"]
        written = leader.sql("SELECT pg_current_wal_lsn() - '0/0'")[0][0]

        def advanced() -> bool:
            row = slots_of(replica)
            return (row.get("perm_log", {}).get("confirmed") or 0) >= confirmed and \
                (row.get(leader.name, {}).get("restart_lsn") or 0) >= written
        wait_until(advanced, OUTAGE, interval=0.5,
                   what="the replica's slots reach the leader's positions during the outage",
                   details=lambda: f"{slots_of(replica)} want perm_log >= {confirmed}, "
                   f"{leader.name} >= {written}\n" + cluster.dump_logs(40))
        assert cluster.etcd is not None and not cluster.etcd.healthy(), "etcd answered"
        assert _active(leader, "/primary"), "the leader left failsafe mode during the test"
