"""GET /patroni documents built from NodeStatus snapshots."""

from __future__ import annotations

import dataclasses
import json

from howdah import COMPAT_VERSION
from howdah.core.status import NodeStatus

NOW = 500.0

PRIMARY = NodeStatus(
    name="n1", scope="demo", state="running", role="primary", pg_running=True,
    server_version=150010, timeline=2, xlog_location=67395656,
    replication=({"usename": "replicator", "application_name": "n2", "client_addr": "10.0.0.2",
                  "state": "streaming", "sync_state": "sync", "sync_priority": 1},),
    postmaster_start_time="2026-11-21 06:00:00+00:00", system_identifier="7268616322854375442",
    dcs_last_seen=1795244184, tags={"clonefrom": True}, lease_deadline=NOW + 10, last_loop=NOW,
)
REPLICA = NodeStatus(
    name="n2", scope="demo", state="running", role="replica", pg_running=True,
    server_version=150010, timeline=2, received_location=200, replayed_location=150,
    replayed_timestamp="2026-11-21 06:01:00+00:00", wal_replay_paused=True,
    replication_state="streaming", sync_standbys=("n2",), dcs_last_seen=1795244184,
)


def test_primary_document() -> None:
    doc = PRIMARY.to_patroni_json(NOW)
    assert doc == {
        "state": "running",
        "postmaster_start_time": "2026-11-21 06:00:00+00:00",
        "role": "primary",
        "server_version": 150010,
        "xlog": {"location": 67395656},
        "timeline": 2,
        "replication": [dict(PRIMARY.replication[0])],
        "dcs_last_seen": 1795244184,
        "tags": {"clonefrom": True},
        "database_system_identifier": "7268616322854375442",
        "patroni": {"version": COMPAT_VERSION, "scope": "demo", "name": "n1"},
        "howdah": {"version": PRIMARY.howdah_version},
    }
    assert list(doc)[:5] == ["state", "postmaster_start_time", "role", "server_version", "xlog"]


def test_replica_document() -> None:
    doc = REPLICA.to_patroni_json(NOW)
    assert doc["role"] == "replica"
    assert doc["xlog"] == {
        "received_location": 200,
        "replayed_location": 150,
        "replayed_timestamp": "2026-11-21 06:01:00+00:00",
        "paused": True,
    }
    assert doc["sync_standby"] is True
    assert doc["replication_state"] == "streaming"
    for absent in ("replication", "tags", "cluster_unlocked", "pause", "pending_restart",
                   "database_system_identifier"):
        assert absent not in doc


def test_received_falls_back_to_replayed() -> None:
    doc = dataclasses.replace(REPLICA, received_location=None).to_patroni_json(NOW)
    assert doc["xlog"]["received_location"] == 150


def test_standby_leader_xlog_looks_like_a_replica() -> None:
    leader = dataclasses.replace(REPLICA, role="standby_leader", is_standby_cluster=True,
                                 lease_deadline=NOW + 10, sync_standbys=())
    doc = leader.to_patroni_json(NOW)
    assert doc["role"] == "standby_leader"
    assert set(doc["xlog"]) == {"received_location", "replayed_location", "replayed_timestamp", "paused"}


def test_demoted_but_running_reports_replica() -> None:
    doc = dataclasses.replace(REPLICA, role="demoted").to_patroni_json(NOW)
    assert doc["role"] == "replica"


def test_not_running_document() -> None:
    stopped = NodeStatus(name="n3", scope="demo", state="stopped", role="uninitialized",
                         cluster_unlocked=True, pause=True, pending_restart=True, dcs_last_seen=7)
    assert stopped.to_patroni_json(NOW) == {
        "state": "stopped",
        "role": "uninitialized",
        "pause": True,
        "cluster_unlocked": True,
        "dcs_last_seen": 7,
        "pending_restart": True,
        "patroni": {"version": COMPAT_VERSION, "scope": "demo", "name": "n3"},
        "howdah": {"version": stopped.howdah_version},
    }


def test_cluster_unlocked_only_when_true() -> None:
    assert "cluster_unlocked" not in PRIMARY.to_patroni_json(NOW)
    assert dataclasses.replace(REPLICA, cluster_unlocked=True).to_patroni_json(NOW)["cluster_unlocked"] is True


def test_lapsed_lease_serves_the_unknown_form() -> None:
    deadline = PRIMARY.lease_deadline
    assert deadline is not None
    assert PRIMARY.to_patroni_json(deadline - 0.001)["role"] == "primary"
    doc = PRIMARY.to_patroni_json(deadline)
    assert doc["state"] == "unknown"
    assert doc["cluster_unlocked"] is True
    assert "xlog" not in doc  # peers cannot mistake it for a live primary
    assert doc["patroni"]["name"] == "n1"


def test_bytes_are_cached_per_snapshot_and_follow_the_clock() -> None:
    fresh = PRIMARY.patroni_json_bytes(NOW)
    assert PRIMARY.patroni_json_bytes(NOW + 1) is fresh
    assert json.loads(fresh) == PRIMARY.to_patroni_json(NOW)
    stale = PRIMARY.patroni_json_bytes(NOW + 10)
    assert json.loads(stale)["state"] == "unknown"
    assert PRIMARY.patroni_json_bytes(NOW + 11) is stale
    assert PRIMARY.patroni_json_bytes(NOW) is fresh  # a cached stale form never leaks back


def test_snapshot_copies_caller_data() -> None:
    tags = {"zone": "a"}
    rows = [{"application_name": "x"}]
    s = NodeStatus(tags=tags, replication=rows, sync_standbys=["a"])  # type: ignore[arg-type]
    tags["zone"] = "b"
    rows[0]["application_name"] = "y"
    assert s.tags == {"zone": "a"}
    assert s.replication == ({"application_name": "x"},)
    assert s.sync_standbys == ("a",)
    assert hash(s) == hash(dataclasses.replace(s))


def test_defaults_describe_a_node_that_knows_nothing() -> None:
    s = NodeStatus()
    assert not s.pg_running and not s.dcs_ok and s.lease_deadline is None
    assert s.to_patroni_json(0.0)["role"] == "uninitialized"
    assert json.loads(s.patroni_json_bytes(0.0))["state"] == "stopped"
