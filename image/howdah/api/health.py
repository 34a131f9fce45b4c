"""Health checks: which status code each health path answers for a snapshot.

Pure functions of a :class:`NodeStatus`, the request's query and ``now`` (a
``time.monotonic()`` value read by the caller).  No I/O, no clock reads.

Safety rule: nothing answers as the leader unless the snapshot's lease is
valid at ``now``.  A snapshot older than ``ttl`` (its HA loop stopped) answers
no replica check either, since its positions and state can no longer be
trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from howdah.core.status import PRIMARY, REPLICA, RUNNING, STANDBY_LEADER, NodeStatus

OK = 200
UNAVAILABLE = 503

_LAG_RE = re.compile(r"\s*(\d{1,20}(?:\.\d{1,20})?)\s*([A-Za-z]{0,2})\s*")
_LAG_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
_TRUE_WORDS = frozenset({"1", "on", "true", "t", "yes", "y"})


class QueryError(ValueError):
    """A query parameter the checks cannot honour; the API answers 400."""


@dataclass(frozen=True)
class CheckQuery:
    """The query parameters that change a health check's answer."""

    lag: int | None = None  # bytes
    replication_state: str | None = None
    mode: str = "apply"  # /readiness: "apply" (replayed) or "write" (received)
    tags: tuple[tuple[str, str], ...] = ()


NO_QUERY = CheckQuery()


def parse_lag(text: str) -> int:
    """Parse ``1048576``, ``16kB``, ``10MB``, ``1GB``... into bytes.

    Units are case-insensitive powers of 1024 as in Postgres' memory units.
    Patroni silently ignores a value it cannot parse (no lag limit at all);
    we refuse it so a typo cannot route traffic to a lagging replica.
    """
    m = _LAG_RE.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _LAG_UNITS:
        raise QueryError(f"invalid lag value {text!r}: expected bytes or a number with kB, MB, GB or TB")
    return int(float(m.group(1)) * _LAG_UNITS[unit])


def parse_query(args: Mapping[str, Sequence[str]]) -> CheckQuery:
    """Build a :class:`CheckQuery` from parsed query arguments (first value wins)."""
    lag = parse_lag(args["lag"][0]) if args.get("lag") else None
    state = args["replication_state"][0] if args.get("replication_state") else None
    mode = args["mode"][0] if args.get("mode") else "apply"
    if mode not in ("apply", "write"):
        raise QueryError(f"invalid mode {mode!r}: expected apply or write")
    tags = tuple((k[4:], v[0]) for k, v in args.items() if k.startswith("tag_") and v)
    return CheckQuery(lag=lag, replication_state=state, mode=mode, tags=tags)


# -- building blocks ---------------------------------------------------------


def is_running(s: NodeStatus) -> bool:
    return s.pg_running and s.state == RUNNING


def is_fresh(s: NodeStatus, now: float) -> bool:
    """The HA loop completed within ``ttl``: the snapshot can be trusted."""
    return s.last_loop is not None and now - s.last_loop <= s.ttl


def truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return bool(value)


def leader_position(s: NodeStatus) -> int:
    """Best known leader WAL position: the DCS optime or what we received."""
    return max(s.leader_optime or 0, s.received_location or 0)


def is_lagging(s: NodeStatus, max_lag: int | None) -> bool:
    if max_lag is None:
        return False
    leader = leader_position(s)
    return leader > 0 and leader > (s.replayed_location or 0) + max_lag


def tags_match(s: NodeStatus, wanted: Sequence[tuple[str, str]]) -> bool:
    """Every ``tag_<key>=<value>`` matches; non-string tags compare lowercased."""
    for key, value in wanted:
        have = s.tags.get(key)
        if have is None:
            return False
        if (have if isinstance(have, str) else str(have).lower()) != value:
            return False
    return True


# -- the checks --------------------------------------------------------------


def primary_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return s.lease_valid(now) and s.role == PRIMARY and not s.is_standby_cluster


def leader_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return s.lease_valid(now)


def standby_leader_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return s.lease_valid(now) and s.is_standby_cluster and s.role in (STANDBY_LEADER, REPLICA)


def replica_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return (
        is_fresh(s, now)
        and is_running(s)
        and s.role == REPLICA
        and not truthy(s.tags.get("noloadbalance"))
        and not is_lagging(s, q.lag)
        and (q.replication_state is None or s.replication_state == q.replication_state)
    )


def read_only_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return primary_ok(s, now, q) or standby_leader_ok(s, now, q) or replica_ok(s, now, q)


def is_sync_standby(s: NodeStatus) -> bool:
    return not s.sync_quorum and s.name in s.sync_standbys


def is_quorum_standby(s: NodeStatus) -> bool:
    return s.sync_quorum and s.name in s.sync_standbys


def sync_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return s.dcs_ok and is_sync_standby(s) and replica_ok(s, now, q)


def async_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return s.dcs_ok and s.name not in s.sync_standbys and replica_ok(s, now, q)


def quorum_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return s.dcs_ok and is_quorum_standby(s) and replica_ok(s, now, q)


def read_only_quorum_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return primary_ok(s, now, q) or standby_leader_ok(s, now, q) or quorum_ok(s, now, q)


def read_only_sync_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return primary_ok(s, now, q) or standby_leader_ok(s, now, q) or sync_ok(s, now, q)


def health_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    return is_fresh(s, now) and is_running(s)


def liveness_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    """The HA loop ran within ttl (2 * ttl unless a running primary), or paused."""
    if s.pause:
        return True
    factor = 1 if s.role == PRIMARY and s.pg_running else 2
    return s.last_loop is not None and now - s.last_loop < s.ttl * factor


def readiness_ok(s: NodeStatus, now: float, q: CheckQuery) -> bool:
    """Leader, or a running, streaming replica with a DCS view and small lag."""
    if s.lease_valid(now):
        return True
    if not (is_fresh(s, now) and is_running(s) and s.dcs_ok and s.replication_state == "streaming"):
        return False
    position = s.received_location if q.mode == "write" else s.replayed_location
    max_lag = s.maximum_lag_on_failover if q.lag is None else q.lag
    return leader_position(s) - (position or 0) <= max_lag


Check = Callable[[NodeStatus, float, CheckQuery], bool]


@dataclass(frozen=True)
class HealthCheck:
    check: Check
    uses_tags: bool  # leader checks ignore tag_ filters, as in Patroni


_PRIMARY = HealthCheck(primary_ok, uses_tags=False)
_STANDBY_LEADER = HealthCheck(standby_leader_ok, uses_tags=False)
_SYNC = HealthCheck(sync_ok, uses_tags=True)
_ASYNC = HealthCheck(async_ok, uses_tags=True)
_READ_ONLY_SYNC = HealthCheck(read_only_sync_ok, uses_tags=True)
_QUORUM = HealthCheck(quorum_ok, uses_tags=True)
_READ_ONLY_QUORUM = HealthCheck(read_only_quorum_ok, uses_tags=True)

CHECKS: Mapping[str, HealthCheck] = {
    "/": _PRIMARY,
    "/primary": _PRIMARY,
    "/read-write": _PRIMARY,
    "/master": _PRIMARY,
    "/leader": HealthCheck(leader_ok, uses_tags=False),
    "/standby-leader": _STANDBY_LEADER,
    "/standby_leader": _STANDBY_LEADER,
    "/replica": HealthCheck(replica_ok, uses_tags=True),
    "/read-only": HealthCheck(read_only_ok, uses_tags=True),
    "/health": HealthCheck(health_ok, uses_tags=True),
    "/liveness": HealthCheck(liveness_ok, uses_tags=False),
    "/readiness": HealthCheck(readiness_ok, uses_tags=False),
    "/sync": _SYNC,
    "/synchronous": _SYNC,
    "/async": _ASYNC,
    "/asynchronous": _ASYNC,
    "/read-only-sync": _READ_ONLY_SYNC,
    "/read-only-synchronous": _READ_ONLY_SYNC,
    "/quorum": _QUORUM,
    "/read-only-quorum": _READ_ONLY_QUORUM,
}


def status_code(path: str, s: NodeStatus, now: float, q: CheckQuery = NO_QUERY) -> int:
    """200 or 503 for a health path; raises KeyError for any other path."""
    hc = CHECKS[path]
    ok = hc.check(s, now, q)
    if ok and hc.uses_tags and q.tags:
        ok = tags_match(s, q.tags)
    return OK if ok else UNAVAILABLE
