"""synchronous_mode: quorum (Patroni 4's quorum commit), side by side with Patroni 4.1.5.

The same YAML runs on both agents; the tests compare what is visible from
outside (the sync key's fields, the shape of synchronous_standby_names, the
roles and health codes) once each cluster settled, then prove on Howdah that
a failover keeps every acknowledged write.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest

from harness import LocalCluster
from harness.waiting import wait_for

pytestmark = [pytest.mark.local, pytest.mark.timeout(900)]
QUORUM = {"bootstrap": {"dcs": {"synchronous_mode": "quorum", "synchronous_node_count": 1}}}
ENDPOINTS = ("/quorum", "/read-only-quorum", "/sync", "/async", "/read-only-sync")


def _settled(c: LocalCluster) -> dict[str, Any] | None:
    """The sync key once it names the leader and both standbys as voters."""
    leader = c.leader()
    key = c.dcs_json("sync")
    if leader is None or key.get("leader") != leader.name:
        return None
    others = sorted(n.name for n in c.nodes if n is not leader)
    return key if sorted(str(key.get("sync_standby") or "").split(",")) == others else None


def _observe(c: LocalCluster) -> dict[str, Any]:
    """What the two agents must agree on, with node names replaced by roles."""
    key = wait_for("the sync key naming both standbys", lambda: _settled(c), 240)
    leader = c.wait_leader(60)
    ssn = str(leader.sql("SHOW synchronous_standby_names")[0][0])
    states = sorted(str(r[0]) for r in leader.sql("SELECT sync_state FROM pg_stat_replication"))
    standby = next(n for n in c.nodes if n is not leader)

    def codes(node: Any) -> dict[str, int]:
        return {ep: node.api(ep)[0] for ep in ENDPOINTS}
    wait_for("the standby reporting itself a quorum standby",
             lambda: standby.api("/quorum")[0] == 200, 60)
    roles = sorted(m.get("role") for m in leader.api("/cluster")[1].get("members", []))
    return {
        "key_fields": sorted(key),
        "quorum": key.get("quorum"),
        "ssn_shape": re.sub(r"\(.*\)", "(names)", ssn),
        "ssn_sorted": ssn.endswith("(" + ",".join(sorted(key["sync_standby"].split(","))) + ")"),
        "sync_states": states,
        "roles": roles,
        "primary_codes": codes(leader),
        "standby_codes": codes(standby),
        "standby_flag": {k: standby.api("/patroni")[1].get(k)
                         for k in ("quorum_standby", "sync_standby")},
    }


def test_quorum_mode_looks_the_same_as_patroni(
        patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    patroni = local_cluster(3, kind="patroni", ttl=20, loop_wait=2, retry_timeout=5,
                            extra=QUORUM)
    patroni.wait_leader(180)
    theirs = _observe(patroni)
    patroni.close()
    howdah = local_cluster(3, ttl=20, loop_wait=2, retry_timeout=5, extra=QUORUM)
    howdah.wait_leader(180)
    ours = _observe(howdah)
    assert theirs["ssn_shape"] == "ANY 1 (names)", theirs
    assert ours == theirs


def test_quorum_failover_keeps_acknowledged_writes(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3, extra=QUORUM)
    c.wait_leader(180)
    wait_for("the sync key naming both standbys", lambda: _settled(c), 240)
    leader = c.wait_leader(60)
    assert str(leader.sql("SHOW synchronous_standby_names")[0][0]).startswith("ANY 1 (")
    leader.sql("CREATE TABLE acked (v int)")
    leader.sql("INSERT INTO acked SELECT generate_series(1, 100)")
    leader.kill9()
    new = c.wait_leader(120, exclude=[leader.name])
    assert new.sql("SELECT count(*) FROM acked") == [(100,)]
    # the survivor becomes the new leader's voter again
    wait_for("the new leader's sync key with its standby",
             lambda: c.dcs_json("sync").get("leader") == new.name and c.dcs_json("sync").get("sync_standby"),
             120)
