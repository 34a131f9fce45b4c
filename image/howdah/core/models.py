"""Immutable snapshots the decision function works on.

Everything here is plain data: the agent observes the DCS, PostgreSQL and its
peers, freezes what it saw into these classes, and hands them to `decide()`.
No I/O and no clock reads happen in this package.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


class Role(str, enum.Enum):
    """Role as published in member JSON and GET /patroni."""

    PRIMARY = "primary"
    REPLICA = "replica"
    STANDBY_LEADER = "standby_leader"
    DEMOTED = "demoted"
    UNINITIALIZED = "uninitialized"


class DataState(str, enum.Enum):
    """What the data directory holds, read from disk and pg_controldata."""

    EMPTY = "empty"  # missing or empty directory
    PRIMARY = "primary"  # cluster state "in production" or "shut down"
    REPLICA = "replica"  # "in archive recovery" or "shut down in recovery"
    CRASHED_PRIMARY = "crashed primary"  # "in production" while not running
    UNKNOWN = "unknown"  # something is there but pg_controldata cannot read it


class TaskKind(str, enum.Enum):
    """Long-running work done off the HA loop; decide() sees it running."""

    BOOTSTRAP = "initializing new cluster"
    CREATE_REPLICA = "creating replica"
    REWIND = "rewinding"
    START = "starting"
    STOP = "stopping"
    DEMOTE = "demoting"
    PROMOTE = "promoting"
    RESTART = "restarting"


@dataclass(frozen=True)
class Member:
    """One member key from the DCS."""

    name: str
    role: str = "uninitialized"
    state: str = "stopped"
    conn_url: str = ""
    api_url: str = ""
    xlog_location: int = 0
    timeline: int = 0
    tags: Mapping[str, Any] = field(default_factory=dict)
    version: str = ""

    @property
    def nofailover(self) -> bool:
        return not failover_allowed(self.tags)

    @property
    def failover_priority(self) -> int:
        return priority_of(self.tags)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def priority_of(tags: Mapping[str, Any]) -> int:
    """failover_priority as Patroni 4.1 reads it: 0 with nofailover set, else the
    tag (1 when absent or unreadable)."""
    if truthy(tags.get("nofailover")):
        return 0
    priority = _int_or_none(tags.get("failover_priority"))
    return 1 if priority is None else priority


def failover_allowed(tags: Mapping[str, Any]) -> bool:
    """A nofailover tag that is set (true or false) decides; without it
    failover_priority <= 0 behaves as nofailover (Patroni's rule)."""
    if tags.get("nofailover") is not None:
        return not truthy(tags.get("nofailover"))
    priority = _int_or_none(tags.get("failover_priority"))
    return priority is None or priority > 0


BOOL_TAGS = ("clonefrom", "nofailover", "noloadbalance", "nosync", "nostream")


def public_tags(tags: Mapping[str, Any]) -> dict[str, Any]:
    """The tags a member publishes (member key, GET /patroni), as Patroni filters
    them: the boolean tags only when set, except nofailover/nosync when their
    priority tag is also given (both are needed to read a conflict)."""
    return {k: v for k, v in tags.items()
            if k not in BOOL_TAGS or truthy(v)
            or (k == "nofailover" and "failover_priority" in tags)
            or (k == "nosync" and "sync_priority" in tags)}


def tag_conflicts(tags: Mapping[str, Any]) -> list[str]:
    """Warnings for a boolean tag contradicting its priority tag (the boolean wins)."""
    out = []
    for flag, prio in (("nofailover", "failover_priority"), ("nosync", "sync_priority")):
        if flag not in tags:
            continue
        priority = _int_or_none(tags.get(prio))
        on = truthy(tags.get(flag))
        if priority is not None and (on and priority > 0 or not on and priority <= 0):
            out.append(f"Conflicting configuration between {flag}: {tags.get(flag)} and "
                       f"{prio}: {priority}. Defaulting to {flag}: {tags.get(flag)}")
    return out


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


@dataclass(frozen=True)
class Leader:
    name: str
    index: int  # etcd modifiedIndex, for watches


@dataclass(frozen=True)
class ClusterView:
    """The DCS as read at the start of a cycle."""

    initialize: str | None = None  # None: key absent; "": bootstrap running
    initialize_index: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    config_index: int | None = None
    leader: Leader | None = None
    members: tuple[Member, ...] = ()
    optime: int | None = None  # from the status key
    slots: Mapping[str, int] = field(default_factory=dict)
    retain_slots: tuple[str, ...] = ()  # /status: member slots kept for member_slots_ttl
    failsafe: Mapping[str, str] | None = None  # /failsafe: {member: api_url}
    history: tuple[tuple[Any, ...], ...] = ()
    failover: Mapping[str, Any] = field(default_factory=dict)
    sync_leader: str | None = None  # the `sync` key: whose synchronous standbys
    sync_standbys: tuple[str, ...] = ()
    sync_index: int | None = None
    sync_quorum: int = 0  # the sync key's quorum: votes a candidate needs beyond one
    index: int = 0

    def member(self, name: str) -> Member | None:
        for m in self.members:
            if m.name == name:
                return m
        return None

    @property
    def leader_member(self) -> Member | None:
        return self.member(self.leader.name) if self.leader else None


@dataclass(frozen=True)
class PeerStatus:
    """A peer's GET /patroni answer as seen during the leader race."""

    name: str
    reachable: bool
    role: str = ""
    running: bool = False
    timeline: int = 0
    received: int = 0
    replayed: int = 0
    tags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def wal_position(self) -> int:
        return max(self.received, self.replayed)


@dataclass(frozen=True)
class PgStatus:
    """PostgreSQL as observed this cycle."""

    data: DataState = DataState.EMPTY
    running: bool = False
    in_recovery: bool = False
    sysid: str | None = None
    timeline: int = 0
    wal_position: int = 0  # current write LSN on a primary, received on a replica
    replayed: int = 0
    upstream_host: str | None = None  # host in primary_conninfo, replica only
    streaming: bool = False
    postmaster_pid: int | None = None  # of the running postmaster


@dataclass(frozen=True)
class Task:
    kind: TaskKind
    started: float


@dataclass(frozen=True)
class TaskResult:
    kind: TaskKind
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class LocalState:
    """What this node knows about itself."""

    name: str
    pg: PgStatus = PgStatus()
    task: Task | None = None
    last_result: TaskResult | None = None
    dcs_ok: bool = True
    last_renew: float | None = None  # monotonic time a renewal was *sent*
    was_running: bool = False  # postgres was running at the end of the last cycle
    crash_since: float | None = None  # a primary crash first seen at
    tags: Mapping[str, Any] = field(default_factory=dict)
    rewind_failed: bool = False
    basebackup_failures: int = 0
    wall: float = 0.0  # wall-clock seconds, for scheduled switchovers
    request: str | None = None  # "restart", "reload" or "reinitialize" asked through the API
    demoted: bool = False  # this agent stopped its primary for a switchover (not restarted since)
    # Why this node may not run a primary (its fence cannot run, a required
    # watchdog is missing), or None
    unguarded: str | None = None
    # failsafe_mode: who confirmed this primary this cycle while the DCS is unreachable
    # ("confirmed by n2, n3"), and the leader that sent us POST /failsafe within ttl
    failsafe: str | None = None
    failsafe_leader: str | None = None
    # this node's data left the leader's timeline (checked only while postgres is
    # down and remove_data_directory_on_diverged_timelines may act on it), or None
    diverged: bool | None = None
    # the postmaster runs but postgres did not answer within the lease's bound (issue 10
    # item 7: pg/query.bound_thread): this primary cannot be confirmed
    unanswered: bool = False
