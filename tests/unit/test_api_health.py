"""Health checks as data: (path, snapshot, now, query) -> status code."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from howdah.api.health import (
    CHECKS,
    NO_QUERY,
    CheckQuery,
    QueryError,
    parse_lag,
    parse_query,
    status_code,
)
from howdah.core.status import NodeStatus

NOW = 1000.0
MB = 1 << 20

PRIMARY = NodeStatus(
    name="n1", scope="demo", state="running", role="primary", pg_running=True,
    xlog_location=100 * MB, lease_deadline=NOW + 20, last_loop=NOW - 1, dcs_ok=True,
    leader_optime=100 * MB, tags={"zone": "a"},
)
REPLICA = NodeStatus(
    name="n2", scope="demo", state="running", role="replica", pg_running=True,
    received_location=100 * MB, replayed_location=100 * MB, replication_state="streaming",
    last_loop=NOW - 1, dcs_ok=True, leader_optime=100 * MB,
    tags={"zone": "b", "nofailover": False, "weight": 3},
)
STANDBY_LEADER = dataclasses.replace(
    REPLICA, name="s1", role="standby_leader", is_standby_cluster=True, lease_deadline=NOW + 20
)


def v(base: NodeStatus, **changes: Any) -> NodeStatus:
    return dataclasses.replace(base, **changes)


LAPSED = v(PRIMARY, lease_deadline=NOW)  # deadline reached: not valid any more
NO_LEASE = v(PRIMARY, lease_deadline=None)
STOPPED_REPLICA = v(REPLICA, pg_running=False, state="stopped")
STARTING_REPLICA = v(REPLICA, state="starting")
NOLB = v(REPLICA, tags={"noloadbalance": True})
NOLB_STR = v(REPLICA, tags={"noloadbalance": "false"})
LAGGING = v(REPLICA, replayed_location=90 * MB, received_location=95 * MB)
BEHIND_DCS = v(REPLICA, leader_optime=120 * MB)  # DCS optime ahead of what we received
STALE = v(REPLICA, last_loop=NOW - 31)  # HA loop stopped more than ttl ago
SYNC = v(REPLICA, sync_standbys=("n2",), sync_leader="n1")
SYNC_NO_DCS = v(SYNC, dcs_ok=False)
QUORUM = v(SYNC, sync_standbys=("n2", "n3"), sync_quorum=True)
ARCHIVE = v(REPLICA, replication_state="in archive recovery")
PAUSED_HUNG = v(REPLICA, pause=True, last_loop=NOW - 1000)
STANDBY_REPLICA = v(REPLICA, is_standby_cluster=True)

CASES = [
    # the primary family: lock by own clock, role primary, not a standby cluster
    ("/", PRIMARY, NO_QUERY, 200),
    ("/primary", PRIMARY, NO_QUERY, 200),
    ("/read-write", PRIMARY, NO_QUERY, 200),
    ("/master", PRIMARY, NO_QUERY, 200),
    ("/primary", LAPSED, NO_QUERY, 503),
    ("/primary", NO_LEASE, NO_QUERY, 503),
    ("/primary", REPLICA, NO_QUERY, 503),
    ("/primary", STANDBY_LEADER, NO_QUERY, 503),
    ("/primary", PRIMARY, CheckQuery(tags=(("zone", "nowhere"),)), 200),  # leader paths ignore tags
    ("/leader", PRIMARY, NO_QUERY, 200),
    ("/leader", STANDBY_LEADER, NO_QUERY, 200),
    ("/leader", LAPSED, NO_QUERY, 503),
    ("/leader", REPLICA, NO_QUERY, 503),
    ("/standby-leader", STANDBY_LEADER, NO_QUERY, 200),
    ("/standby_leader", STANDBY_LEADER, NO_QUERY, 200),
    ("/standby-leader", PRIMARY, NO_QUERY, 503),
    ("/standby-leader", v(STANDBY_LEADER, lease_deadline=NOW - 1), NO_QUERY, 503),
    # the replica rule
    ("/replica", REPLICA, NO_QUERY, 200),
    ("/replica", PRIMARY, NO_QUERY, 503),
    ("/replica", STANDBY_LEADER, NO_QUERY, 503),
    ("/replica", STANDBY_REPLICA, NO_QUERY, 200),
    ("/replica", STOPPED_REPLICA, NO_QUERY, 503),
    ("/replica", STARTING_REPLICA, NO_QUERY, 503),
    ("/replica", NOLB, NO_QUERY, 503),
    ("/replica", NOLB_STR, NO_QUERY, 200),
    ("/replica", STALE, NO_QUERY, 503),
    ("/replica", v(REPLICA, last_loop=None), NO_QUERY, 503),
    ("/replica", LAGGING, NO_QUERY, 200),  # no lag asked: lag does not matter
    ("/replica", LAGGING, CheckQuery(lag=10 * MB), 200),  # 10 MB behind: at the limit
    ("/replica", LAGGING, CheckQuery(lag=10 * MB - 1), 503),
    ("/replica", BEHIND_DCS, CheckQuery(lag=10 * MB), 503),
    ("/replica", BEHIND_DCS, CheckQuery(lag=20 * MB), 200),
    ("/replica", v(REPLICA, leader_optime=None, received_location=None), CheckQuery(lag=0), 200),
    ("/replica", REPLICA, CheckQuery(replication_state="streaming"), 200),
    ("/replica", ARCHIVE, CheckQuery(replication_state="streaming"), 503),
    ("/replica", ARCHIVE, NO_QUERY, 200),
    # tag filters apply to replica-style checks
    ("/replica", REPLICA, CheckQuery(tags=(("zone", "b"),)), 200),
    ("/replica", REPLICA, CheckQuery(tags=(("zone", "a"),)), 503),
    ("/replica", REPLICA, CheckQuery(tags=(("rack", "1"),)), 503),  # tag not set
    ("/replica", REPLICA, CheckQuery(tags=(("nofailover", "false"),)), 200),  # bools lowercased
    ("/replica", REPLICA, CheckQuery(tags=(("weight", "3"),)), 200),
    ("/replica", REPLICA, CheckQuery(tags=(("zone", "b"), ("weight", "4"))), 503),
    # read-only: the leader, or the replica rule
    ("/read-only", PRIMARY, NO_QUERY, 200),
    ("/read-only", STANDBY_LEADER, NO_QUERY, 200),
    ("/read-only", REPLICA, NO_QUERY, 200),
    ("/read-only", LAPSED, NO_QUERY, 503),
    ("/read-only", NOLB, NO_QUERY, 503),
    ("/read-only", PRIMARY, CheckQuery(tags=(("zone", "b"),)), 503),
    # sync / async per the sync key
    ("/sync", SYNC, NO_QUERY, 200),
    ("/synchronous", SYNC, NO_QUERY, 200),
    ("/sync", REPLICA, NO_QUERY, 503),
    ("/sync", SYNC_NO_DCS, NO_QUERY, 503),
    ("/sync", v(SYNC, tags={"noloadbalance": True}), NO_QUERY, 503),
    ("/async", REPLICA, NO_QUERY, 200),
    ("/asynchronous", REPLICA, NO_QUERY, 200),
    ("/async", SYNC, NO_QUERY, 503),
    ("/async", PRIMARY, NO_QUERY, 503),
    ("/async", LAGGING, CheckQuery(lag=MB), 503),
    ("/read-only-sync", PRIMARY, NO_QUERY, 200),
    ("/read-only-sync", SYNC, NO_QUERY, 200),
    ("/read-only-synchronous", SYNC, NO_QUERY, 200),
    ("/read-only-sync", REPLICA, NO_QUERY, 503),
    # quorum mode (as Patroni 4.1.5 answers): the listed standbys are quorum
    # standbys, neither sync nor async
    ("/quorum", QUORUM, NO_QUERY, 200),
    ("/quorum", REPLICA, NO_QUERY, 503),
    ("/quorum", PRIMARY, NO_QUERY, 503),
    ("/quorum", SYNC, NO_QUERY, 503),
    ("/read-only-quorum", PRIMARY, NO_QUERY, 200),
    ("/read-only-quorum", QUORUM, NO_QUERY, 200),
    ("/read-only-quorum", REPLICA, NO_QUERY, 503),
    ("/sync", QUORUM, NO_QUERY, 503),
    ("/async", QUORUM, NO_QUERY, 503),
    ("/read-only-sync", QUORUM, NO_QUERY, 503),
    # health: Postgres running, any role
    ("/health", PRIMARY, NO_QUERY, 200),
    ("/health", REPLICA, NO_QUERY, 200),
    ("/health", LAPSED, NO_QUERY, 200),
    ("/health", STOPPED_REPLICA, NO_QUERY, 503),
    ("/health", STALE, NO_QUERY, 503),
    ("/health", REPLICA, CheckQuery(tags=(("zone", "x"),)), 503),
    # liveness: the HA loop ran within ttl (2 * ttl off a running primary)
    ("/liveness", PRIMARY, NO_QUERY, 200),
    ("/liveness", v(PRIMARY, last_loop=NOW - 29), NO_QUERY, 200),
    ("/liveness", v(PRIMARY, last_loop=NOW - 30), NO_QUERY, 503),
    ("/liveness", v(REPLICA, last_loop=NOW - 59), NO_QUERY, 200),
    ("/liveness", v(REPLICA, last_loop=NOW - 60), NO_QUERY, 503),
    ("/liveness", v(REPLICA, last_loop=None), NO_QUERY, 503),
    ("/liveness", PAUSED_HUNG, NO_QUERY, 200),
    # readiness: leader, or running + streaming + DCS view + lag within the limit
    ("/readiness", PRIMARY, NO_QUERY, 200),
    ("/readiness", STANDBY_LEADER, NO_QUERY, 200),
    ("/readiness", LAPSED, NO_QUERY, 503),
    ("/readiness", REPLICA, NO_QUERY, 200),
    ("/readiness", v(REPLICA, dcs_ok=False), NO_QUERY, 503),
    ("/readiness", ARCHIVE, NO_QUERY, 503),
    ("/readiness", STOPPED_REPLICA, NO_QUERY, 503),
    ("/readiness", LAGGING, NO_QUERY, 503),  # 10 MB > maximum_lag_on_failover (1 MB)
    ("/readiness", LAGGING, CheckQuery(lag=10 * MB), 200),
    ("/readiness", LAGGING, CheckQuery(lag=5 * MB, mode="write"), 200),  # received 5 MB behind
    ("/readiness", LAGGING, CheckQuery(lag=5 * MB, mode="apply"), 503),
    ("/readiness", v(LAGGING, maximum_lag_on_failover=16 * MB), NO_QUERY, 200),
]


@pytest.mark.parametrize(("path", "status", "query", "expected"), CASES)
def test_status_code(path: str, status: NodeStatus, query: CheckQuery, expected: int) -> None:
    assert status_code(path, status, NOW, query) == expected


def test_every_path_has_a_case() -> None:
    assert set(CHECKS) == {path for path, *_ in CASES}


def test_unknown_path_is_not_a_check() -> None:
    with pytest.raises(KeyError):
        status_code("/patroni", PRIMARY, NOW)


def test_primary_only_until_the_deadline() -> None:
    deadline = PRIMARY.lease_deadline
    assert deadline is not None
    assert status_code("/primary", PRIMARY, deadline - 0.001) == 200
    assert status_code("/primary", PRIMARY, deadline) == 503
    assert status_code("/primary", PRIMARY, deadline + 100) == 503


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("16kB", 16 * 1024),
        ("16KB", 16 * 1024),
        ("1024kb", MB),
        ("10MB", 10 * MB),
        ("1GB", 1 << 30),
        ("2TB", 2 << 40),
        ("512B", 512),
        (" 1.5MB ", 3 * MB // 2),
        ("64 MB", 64 * MB),
    ],
)
def test_parse_lag(text: str, expected: int) -> None:
    assert parse_lag(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1", "10XB", "1e6", "10 M B", "0x10", "9" * 5000, "1,5MB"])
def test_parse_lag_rejects(text: str) -> None:
    with pytest.raises(QueryError, match="invalid lag"):
        parse_lag(text)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, NO_QUERY),
        ({"lag": ["10MB", "1"]}, CheckQuery(lag=10 * MB)),
        ({"replication_state": ["streaming"]}, CheckQuery(replication_state="streaming")),
        ({"mode": ["write"]}, CheckQuery(mode="write")),
        ({"tag_zone": ["a"], "tag_rack": ["1"], "other": ["x"]}, CheckQuery(tags=(("zone", "a"), ("rack", "1")))),
    ],
)
def test_parse_query(args: dict[str, list[str]], expected: CheckQuery) -> None:
    assert parse_query(args) == expected


@pytest.mark.parametrize("args", [{"lag": [""]}, {"lag": ["1 parsec"]}, {"mode": ["fast"]}])
def test_parse_query_rejects(args: dict[str, list[str]]) -> None:
    with pytest.raises(QueryError):
        parse_query(args)
