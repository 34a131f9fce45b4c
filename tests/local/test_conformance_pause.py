"""Pause (maintenance mode) side by side: Patroni 4.1.5 and Howdah from the same YAML.

In one paused two-node cluster of each kind:
* health answers on the leader and the replica are the same;
* a scheduled switchover is refused with Patroni's message (400);
* POST /switchover naming leader and candidate is performed at once (200);
* a DCS outage longer than ttl demotes nobody, and the primary holds the lock after it;
* stopping the leader's agent leaves PostgreSQL running (writable) and the leader key.
"""
from __future__ import annotations

import base64
import time
from typing import Any, Callable

import pytest

from harness import AgentNode, LocalCluster, wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(900)]
# ttl 30 (the other conformance tests: 20) leaves the stop of the agent room on a loaded machine
TIMING: dict[str, Any] = {"ttl": 30, "loop_wait": 2, "retry_timeout": 10}
PATHS = ("/primary", "/replica", "/read-only", "/health", "/liveness", "/readiness", "/leader")


def _body(node: Any, path: str) -> dict[str, Any]:
    code, body = node.api(path)
    return body if code and isinstance(body, dict) else {}


def leader_ttl_left(cluster: LocalCluster) -> float | None:
    """Seconds the leader key has left in etcd (its v3 lease, or its v2 ttl); None if absent."""
    etcd, key = cluster.etcd, f"/service/{cluster.scope}/leader"
    assert etcd is not None
    if etcd.v2:
        code, body = etcd._request(f"/v2/keys{key}")
        ttl = (body or {}).get("node", {}).get("ttl") if code == 200 else None
        return float(ttl) if ttl is not None else None
    code, body = etcd._request("/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()})
    kvs = (body or {}).get("kvs") if code == 200 else None
    if not kvs or not kvs[0].get("lease"):
        return None
    code, body = etcd._request("/v3/lease/timetolive", {"ID": kvs[0]["lease"]})
    return float((body or {}).get("TTL", -1)) if code == 200 else None


def codes(node: Any) -> dict[str, int]:
    return {path: node.api(path)[0] for path in PATHS}


@pytest.mark.parametrize("kind", [pytest.param("patroni", marks=pytest.mark.patroni), "howdah"])
def test_pause(kind: str, streaming_pair: Callable[..., tuple[LocalCluster, AgentNode, AgentNode]]) -> None:
    cluster, leader, replica = streaming_pair(kind, **TIMING)

    code, _ = leader.api("/config", "PATCH", {"pause": True})
    assert code == 200
    for node in cluster.nodes:
        wait_until(lambda: _body(node, "/patroni").get("pause") is True, 60,
                   what=f"{node.name} reports pause")

    # health answers in pause
    assert codes(leader) == {"/primary": 200, "/replica": 503, "/read-only": 200, "/health": 200,
                             "/liveness": 200, "/readiness": 200, "/leader": 200}, kind
    assert codes(replica) == {"/primary": 503, "/replica": 200, "/read-only": 200, "/health": 200,
                              "/liveness": 200, "/readiness": 200, "/leader": 503}, kind

    # a scheduled switchover is refused, an immediate one to a named candidate is done
    code, body = leader.api("/switchover", "POST", {
        "leader": leader.name, "candidate": replica.name,
        "scheduled_at": "2099-01-01T00:00:00+00:00"})
    assert (code, body) == (400, "Can't schedule switchover in the paused state"), kind
    code, body = leader.api("/switchover", "POST", {"leader": leader.name,
                                                     "candidate": replica.name}, timeout=60)
    assert code == 200, (kind, code, body)
    new = cluster.wait_leader(120, exclude=[leader.name])
    assert new is replica
    old = leader
    wait_until(lambda: old.role() == "replica", 120, what="the old leader follows")

    # a DCS outage longer than ttl demotes nobody
    assert cluster.etcd is not None
    cluster.etcd.freeze()
    try:
        time.sleep(TIMING["ttl"] + 5)
        assert new.is_writable(), f"{kind}: the paused primary was demoted by a DCS outage"
        assert not old.is_writable()
    finally:
        cluster.etcd.thaw()
    # renewed after the outage: right after the thaw etcd still shows the old key, whose
    # lease ran out while etcd was stopped and is revoked a moment later (the test once
    # stopped Patroni on that stale key, before Patroni had reconnected: no key after the stop)
    wait_until(lambda: cluster.dcs_key("leader") == new.name
               and (leader_ttl_left(cluster) or 0) > TIMING["ttl"] / 2, 120,
               what="the paused primary renews the leader key after the outage",
               details=cluster.dump_logs)
    assert new.is_writable()

    # stopping the leader's agent leaves postgres running and the leader key in place
    pid = new.postmaster_pid()
    assert pid is not None
    assert new.stop_sigterm(120) == 0
    assert new.postmaster_pid() == pid
    assert new.is_writable()
    assert cluster.dcs_key("leader") == new.name
