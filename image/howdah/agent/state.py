"""Mutable per-node memory of the agent, and the status it publishes."""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from howdah import COMPAT_VERSION, __version__
from howdah.core.status import NodeStatus
from howdah.core.models import ClusterView, LocalState, PgStatus, Role, public_tags
from howdah.core.settings import Settings
from howdah.core.transitions import Decision
from howdah.pg.query import Snapshot

log = logging.getLogger("howdah.ha")


@dataclass
class Memory:
    """What the agent remembers between cycles (decide() gets a frozen copy)."""

    view: ClusterView = field(default_factory=ClusterView)
    dcs_ok: bool = True
    dcs_last_seen: float = 0.0
    last_renew: float | None = None
    crash_since: float | None = None
    was_running: bool = False
    rewind_failed: bool = False
    role: Role = Role.UNINITIALIZED
    state: str = "stopped"
    last_decision: Decision | None = None
    last_loop: float | None = None
    scheduled_restart: Mapping[str, Any] | None = None  # published in the member key


def member_json(name: str, conn_url: str, api_url: str, mem: Memory, pg: PgStatus,
                tags: dict[str, Any], pending_restart: bool, paused: bool,
                snap: Snapshot | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "conn_url": conn_url,
        "api_url": api_url,
        "state": mem.state,
        "role": mem.role.value,
        "version": COMPAT_VERSION,
        "howdah_version": __version__,
    }
    if pg.running:
        data["xlog_location"] = pg.wal_position
        data["timeline"] = pg.timeline
        if pg.in_recovery:
            data["replication_state"] = "streaming" if pg.streaming else "in archive recovery"
            if snap is not None and snap.in_recovery:  # patronictl list's Receive/Replay
                data["receive_lsn"] = snap.received
                data["replay_lsn"] = snap.replayed
    shown = public_tags(tags)  # default-false boolean tags left out, as Patroni does
    if shown:
        data["tags"] = shown
    if pending_restart:
        data["pending_restart"] = True
        if snap is not None and snap.pending_restart_reason:
            data["pending_restart_reason"] = dict(snap.pending_restart_reason)
    if mem.scheduled_restart:
        data["scheduled_restart"] = dict(mem.scheduled_restart)
    if paused:
        data["pause"] = True  # patronictl pause --wait waits for every member to say so
    return data


def node_status(name: str, scope: str, mem: Memory, pg: PgStatus, snap: Snapshot | None,
                settings: Settings, tags: dict[str, Any], lease_deadline: float | None) -> NodeStatus:
    view = mem.view
    return NodeStatus(
        name=name,
        scope=scope,
        state=mem.state,
        role=mem.role.value,
        pg_running=pg.running,
        postmaster_pid=pg.postmaster_pid if pg.running else None,
        server_version=snap.server_version if snap else None,
        timeline=pg.timeline if pg.running else None,
        xlog_location=snap.wal_position if snap and not snap.in_recovery else None,
        received_location=snap.received if snap and snap.in_recovery else None,
        replayed_location=snap.replayed if snap and snap.in_recovery else None,
        replayed_timestamp=snap.replayed_timestamp if snap else None,
        wal_replay_paused=snap.paused if snap else False,
        replication_state=("streaming" if pg.streaming else "in archive recovery")
        if pg.running and pg.in_recovery else None,
        replication=snap.replication if snap else (),
        postmaster_start_time=snap.start_time if snap else None,
        system_identifier=pg.sysid,
        pending_restart=snap.pending_restart if snap else False,
        pending_restart_reason=dict(snap.pending_restart_reason) if snap else {},
        pause=settings.pause,
        cluster_unlocked=view.leader is None,
        dcs_last_seen=int(mem.dcs_last_seen),
        tags=public_tags(tags),
        scheduled_restart=mem.scheduled_restart,
        lease_deadline=lease_deadline,
        is_standby_cluster=settings.standby_cluster is not None,
        leader_optime=view.optime,
        sync_standbys=view.sync_standbys,
        sync_leader=view.sync_leader,
        sync_quorum=settings.synchronous_quorum,
        last_loop=mem.last_loop,
        ttl=settings.ttl,
        maximum_lag_on_failover=settings.maximum_lag_on_failover,
        dcs_ok=mem.dcs_ok,
        patroni_version=COMPAT_VERSION,
        howdah_version=__version__,
    )


def wall_clock() -> float:
    return time.time()


def to_local(name: str, mem: Memory, pg: PgStatus, task: Any, result: Any,
             tags: dict[str, Any]) -> LocalState:
    return LocalState(
        name=name, pg=pg, task=task, last_result=result, dcs_ok=mem.dcs_ok,
        last_renew=mem.last_renew, was_running=mem.was_running, crash_since=mem.crash_since,
        tags=tags, rewind_failed=mem.rewind_failed, demoted=mem.role == Role.DEMOTED,
    )


class DynamicCache:
    """``patroni.dynamic.json`` in the data directory, as Patroni keeps it: the
    dynamic configuration in effect (the DCS ``config`` key over the defaults),
    rewritten whenever it changes once the data directory holds a cluster.
    Tools and runbooks that read it find it where Patroni leaves it."""

    NAME = "patroni.dynamic.json"
    BASE = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / self.NAME
        self.saved: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        """At start, as Patroni: the cache left by the last run (what the agent goes by,
        and a leader writes back, while the DCS holds no ``config``); None if absent
        or unreadable (then bootstrap.dcs)."""
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", self.path, exc)
            return None
        if not isinstance(doc, dict):
            log.warning("ignoring %s: not a JSON object", self.path)
            return None
        self.saved = doc
        return doc

    def save(self, dynamic: Mapping[str, Any]) -> bool:
        """Write it (atomically, mode 0600) when it changed; False on no change or error."""
        doc = {**self.BASE, **dict(dynamic)}
        if doc == self.saved or not (self.data_dir / "PG_VERSION").is_file():
            return False
        tmp = self.data_dir / f"{self.NAME}.tmp{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, default=str)
            os.replace(tmp, self.path)
        except (OSError, TypeError, ValueError) as exc:
            log.warning("could not write %s: %s", self.path, exc)
            try:
                tmp.unlink()
            except OSError:
                pass
            return False
        self.saved = doc
        return True
