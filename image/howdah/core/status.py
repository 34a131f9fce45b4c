"""The node status snapshot the agent publishes and the REST API serves.

The agent builds a new :class:`NodeStatus` every HA cycle (and whenever the
state changes) and hands it to the API thread by replacing one reference.
Snapshots are never mutated, so the API can serialise each one once and serve
the same bytes to every load-balancer probe until the next snapshot arrives.

Only one thing in a snapshot depends on the time of the request: whether this
node's leader lease is still valid.  A snapshot whose lease has lapsed is by
definition stale (a healthy agent republishes before its deadline), so after
the deadline the JSON switches to a second cached form that says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping

from howdah import COMPAT_VERSION, __version__

# Roles as the agent tracks them and as the JSON reports them.
PRIMARY = "primary"
REPLICA = "replica"
STANDBY_LEADER = "standby_leader"
DEMOTED = "demoted"
UNINITIALIZED = "uninitialized"

RUNNING = "running"

# The first cycle's DCS value of maximum_lag_on_failover (Patroni's default).
DEFAULT_MAXIMUM_LAG_ON_FAILOVER = 1048576


@dataclass(frozen=True)
class NodeStatus:
    """One immutable view of this node, as of the end of an HA cycle.

    Positions are integer LSNs (bytes since 0/0).  ``lease_deadline`` and
    ``last_loop`` are ``time.monotonic()`` values of the agent's process;
    ``dcs_last_seen`` is wall-clock epoch seconds like Patroni's.
    """

    name: str = ""
    scope: str = ""
    # running, starting, stopped, stopping, crashed, restarting,
    # creating replica, initializing new cluster, ...
    state: str = "stopped"
    # primary, replica, standby_leader, demoted, uninitialized
    role: str = UNINITIALIZED
    pg_running: bool = False
    # The running postmaster's pid: the API checks it is alive on every request.
    postmaster_pid: int | None = None
    server_version: int | None = None
    timeline: int | None = None
    xlog_location: int | None = None
    received_location: int | None = None
    replayed_location: int | None = None
    replayed_timestamp: str | None = None
    wal_replay_paused: bool = False
    # "streaming", "in archive recovery" or None
    replication_state: str | None = None
    # rows of pg_stat_replication: usename, application_name, client_addr,
    # state, sync_state, sync_priority
    replication: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    postmaster_start_time: str | None = None
    system_identifier: str | None = None
    pending_restart: bool = False
    # name -> {old_value, new_value} of each parameter waiting for a restart (as Patroni)
    pending_restart_reason: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False)
    # The scheduled restart as published in the member key, or None
    scheduled_restart: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)
    pause: bool = False
    cluster_unlocked: bool = False
    dcs_last_seen: int = 0
    tags: Mapping[str, Any] = field(default_factory=dict, hash=False)
    # Monotonic time until which this node's leader lease is valid; None when
    # it does not hold the leader lock.
    lease_deadline: float | None = None
    is_standby_cluster: bool = False
    # The cluster's last known leader position (the DCS "status" optime).
    leader_optime: int | None = None
    # Members named in the DCS "sync" key, and its leader.
    sync_standbys: tuple[str, ...] = ()
    sync_leader: str | None = None
    sync_quorum: bool = False  # synchronous_mode: quorum (listed standbys are quorum standbys)
    # Monotonic time the HA loop last completed.  Set it to the agent's start
    # time before the first cycle: /liveness and every replica check need it.
    last_loop: float | None = None
    ttl: int = 30
    # From the dynamic config; the default lag limit of /readiness.
    maximum_lag_on_failover: int = DEFAULT_MAXIMUM_LAG_ON_FAILOVER
    dcs_ok: bool = False
    # failsafe_mode: a leader running on its members' confirmations without the DCS,
    # or a replica such a leader asked within ttl (POST /failsafe)
    failsafe_active: bool = False
    patroni_version: str = COMPAT_VERSION
    howdah_version: str = __version__

    def __post_init__(self) -> None:
        # Defensive copies: the caller may keep mutating its own dicts, and a
        # list given for a tuple field would make the snapshot unhashable.
        object.__setattr__(self, "tags", dict(self.tags))
        object.__setattr__(self, "pending_restart_reason",
                           {k: dict(v) for k, v in self.pending_restart_reason.items()})
        object.__setattr__(self, "replication", tuple(dict(r) for r in self.replication))
        object.__setattr__(self, "sync_standbys", tuple(self.sync_standbys))

    # -- lease ---------------------------------------------------------------

    def lease_valid(self, now: float) -> bool:
        """True while this node holds the leader lock by its own clock."""
        return self.lease_deadline is not None and now < self.lease_deadline

    def lease_lapsed(self, now: float) -> bool:
        """True when the snapshot still carries a lease whose deadline passed.

        The agent republishes (with a new deadline, or None after losing the
        lock) before the deadline, so this means the snapshot is stale: the
        agent is hung or far behind, and nothing in it can be vouched for.
        """
        return self.lease_deadline is not None and now >= self.lease_deadline

    @cached_property
    def postmaster_gone(self) -> "NodeStatus":
        """This snapshot once its postmaster has died: PostgreSQL not running,
        state unknown (what Patroni reports when it cannot query it).  Served
        until the HA loop publishes the next snapshot."""
        return replace(self, pg_running=False, state="unknown", postmaster_pid=None)

    # -- GET /patroni --------------------------------------------------------

    @property
    def reported_role(self) -> str:
        """The role as GET /patroni reports it.

        With Postgres running the role says what Postgres is (a standby
        leader is in recovery, like a replica); otherwise the agent's role.
        """
        if not self.pg_running:
            return self.role
        if self.role in (PRIMARY, STANDBY_LEADER):
            return self.role
        return REPLICA

    def to_patroni_json(self, now: float) -> dict[str, Any]:
        """Build a fresh ``GET /patroni`` document (CONTRACT section 3)."""
        if self.lease_lapsed(now):
            return self._stale_json()
        return self._current_json()

    def patroni_json_bytes(self, now: float) -> bytes:
        """The serialised ``GET /patroni`` body, cached per snapshot.

        Two cached forms exist (current and lease-lapsed); which one a
        request gets is decided by ``now`` on every call, never cached.
        """
        if self.lease_lapsed(now):
            return self._stale_json_bytes
        return self._current_json_bytes

    @cached_property
    def _current_json_bytes(self) -> bytes:
        return _dump(self._current_json())

    @cached_property
    def _stale_json_bytes(self) -> bytes:
        return _dump(self._stale_json())

    def _current_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"state": self.state}
        if self.pg_running:
            doc.update(self._postgres_json())
        else:
            doc["role"] = self.role
        self._add_cluster_json(doc, unlocked=self.cluster_unlocked)
        return doc

    def _stale_json(self) -> dict[str, Any]:
        # The shape Patroni serves when it cannot query Postgres: no xlog, so
        # peers in a leader race count this member as not healthy instead of
        # believing a primary that may already be fenced.  The lock has
        # expired by this node's own clock, hence cluster_unlocked.
        doc: dict[str, Any] = {"state": "unknown", "role": self.role}
        self._add_cluster_json(doc, unlocked=True)
        return doc

    def _postgres_json(self) -> dict[str, Any]:
        role = self.reported_role
        doc: dict[str, Any] = {
            "postmaster_start_time": self.postmaster_start_time,
            "role": role,
        }
        if self.server_version is not None:
            doc["server_version"] = self.server_version
        if role == PRIMARY:
            doc["xlog"] = {"location": self.xlog_location or 0}
        else:
            replayed = self.replayed_location or 0
            doc["xlog"] = {
                "received_location": self.received_location or replayed,
                "replayed_location": replayed,
                "replayed_timestamp": self.replayed_timestamp,
                "paused": self.wal_replay_paused,
            }
        if role == REPLICA and self.name in self.sync_standbys:
            doc["quorum_standby" if self.sync_quorum else "sync_standby"] = True
        if self.timeline is not None:
            doc["timeline"] = self.timeline
        if self.replication_state:
            doc["replication_state"] = self.replication_state
        if self.replication:
            doc["replication"] = [dict(row) for row in self.replication]
        return doc

    def _add_cluster_json(self, doc: dict[str, Any], *, unlocked: bool) -> None:
        if self.pause:
            doc["pause"] = True
        if unlocked:
            doc["cluster_unlocked"] = True
        if self.failsafe_active:
            doc["failsafe_mode_is_active"] = True
        doc["dcs_last_seen"] = self.dcs_last_seen
        if self.tags:
            doc["tags"] = dict(self.tags)
        if self.system_identifier:
            doc["database_system_identifier"] = self.system_identifier
        if self.pending_restart:
            doc["pending_restart"] = True
            if self.pending_restart_reason:
                doc["pending_restart_reason"] = {k: dict(v) for k, v in
                                                 self.pending_restart_reason.items()}
        if self.scheduled_restart:  # as Patroni: without the postmaster start time
            doc["scheduled_restart"] = {k: v for k, v in self.scheduled_restart.items()
                                        if k != "postmaster_start_time"}
        doc["patroni"] = {"version": self.patroni_version, "scope": self.scope, "name": self.name}
        doc["howdah"] = {"version": self.howdah_version}


def _dump(doc: Mapping[str, Any]) -> bytes:
    # default=str: a stray datetime or Decimal from a query must not turn a
    # health check into an error.
    return json.dumps(doc, separators=(",", ":"), default=str).encode("utf-8")
