"""GET /metrics: Prometheus exposition of this node's status.

Names follow Patroni's (``patroni_*`` with ``{scope, name}`` labels) so
existing dashboards and alerts keep working; ``howdah_*`` ones add what only
Howdah knows (lease, HA loop age, archive health).  Every metric is a gauge: prometheus_client
would rename a counter to ``*_total``, which Patroni's names do not have.

Archive health (``howdah_archive_*``, ``howdah_backup_*``, ``howdah_repository_*``,
``howdah_volume_*``, ``howdah_wal_bytes_per_second``) comes from the agent's archive-health
thread (howdah.agent.archive_health); unknown values are -1, a volume that is not filling has
``howdah_volume_full_seconds`` +Inf.

Restore drills (``howdah_backup_drill_*``) come from the drill status file that
``howdahctl backup verify`` writes on the node it ran on (howdah.backup.record).
"""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from howdah.agent import archive_health
from howdah.agent.archive_health import Health, segment_end_lsn, wal_timeline
from howdah.backup import record
from howdah.core.status import PRIMARY, REPLICA, RUNNING, STANDBY_LEADER, NodeStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _epoch(iso: str | None) -> float:
    if not iso:
        return 0.0
    try:
        return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def padded_version(version: str) -> int:
    """4.1.5 -> 40105 (Patroni's two digits per part)."""
    digits = "".join(part.zfill(2) for part in version.split(".")[:3] if part.isdigit())
    return int(digits or 0)


class StatusCollector(Collector):
    def __init__(self, get_status: Callable[[], NodeStatus], clock: Callable[[], float],
                 pending: Callable[[], bool]) -> None:
        self._get_status = get_status
        self._clock = clock
        self._pending = pending

    def collect(self) -> Iterator[Metric]:
        s = self._get_status()
        now = self._clock()
        labels = [s.scope, s.name]
        role = s.reported_role
        running = s.pg_running and s.state == RUNNING

        def gauge(name: str, doc: str, value: float) -> Metric:
            g = GaugeMetricFamily(name, doc, labels=["scope", "name"])
            g.add_metric(labels, float(value))
            return g

        yield gauge("patroni_version", "Patroni-compatible version without periods.",
                    padded_version(s.patroni_version))
        yield gauge("patroni_postgres_running", "1 if Postgres is running, 0 otherwise.", int(running))
        yield gauge("patroni_postmaster_start_time", "Epoch seconds since Postgres started.",
                    _epoch(s.postmaster_start_time))
        yield gauge("patroni_primary", "1 if this node is the leader, 0 otherwise.",
                    int(role == PRIMARY and s.lease_valid(now)))
        yield gauge("patroni_xlog_location", "Current WAL location on the primary, 0 elsewhere.",
                    s.xlog_location or 0 if role == PRIMARY else 0)
        yield gauge("patroni_standby_leader", "1 if this node is the standby leader, 0 otherwise.",
                    int(role == STANDBY_LEADER))
        yield gauge("patroni_replica", "1 if this node is a replica, 0 otherwise.", int(role == REPLICA))
        yield gauge("patroni_sync_standby", "1 if this node is a synchronous standby, 0 otherwise.",
                    int(role == REPLICA and s.name in s.sync_standbys))
        yield gauge("patroni_xlog_received_location", "Received WAL location on a replica, 0 elsewhere.",
                    s.received_location or 0)
        yield gauge("patroni_xlog_replayed_location", "Replayed WAL location on a replica, 0 elsewhere.",
                    s.replayed_location or 0)
        yield gauge("patroni_xlog_replayed_timestamp", "Timestamp of the last replayed transaction, 0 if none.",
                    _epoch(s.replayed_timestamp))
        yield gauge("patroni_xlog_paused", "1 if WAL replay is paused, 0 otherwise.", int(s.wal_replay_paused))
        yield gauge("patroni_postgres_streaming", "1 if Postgres streams from another node, 0 otherwise.",
                    int(s.replication_state == "streaming"))
        yield gauge("patroni_postgres_in_archive_recovery", "1 if Postgres replays from the archive.",
                    int(s.replication_state == "in archive recovery"))
        yield gauge("patroni_postgres_server_version", "Postgres version number, 0 if not running.",
                    s.server_version or 0)
        yield gauge("patroni_cluster_unlocked", "1 if nobody holds the leader lock, 0 otherwise.",
                    int(s.cluster_unlocked))
        yield gauge("patroni_failsafe_mode_is_active", "1 if failsafe mode is active, 0 otherwise.",
                    int(s.failsafe_active))
        yield gauge("patroni_postgres_timeline", "Postgres timeline, 0 if not running.", s.timeline or 0)
        yield gauge("patroni_dcs_last_seen", "Epoch seconds of the last successful DCS read.",
                    s.dcs_last_seen)
        yield gauge("patroni_pending_restart", "1 if Postgres needs a restart, 0 otherwise.",
                    int(s.pending_restart))
        yield gauge("patroni_is_paused", "1 if the cluster is paused (maintenance mode).", int(s.pause))
        info = GaugeMetricFamily("howdah_info", "Howdah version.", labels=["scope", "name", "version"])
        info.add_metric([*labels, s.howdah_version], 1.0)
        yield info
        yield gauge("howdah_lease_valid", "1 while this node holds a valid leader lease.",
                    int(s.lease_valid(now)))
        yield gauge("howdah_lease_remaining_seconds", "Seconds left on this node's leader lease, 0 without one.",
                    max(0.0, (s.lease_deadline or now) - now))
        yield gauge("howdah_ha_loop_age_seconds", "Seconds since the HA loop last completed.",
                    now - s.last_loop if s.last_loop is not None else -1)
        yield gauge("howdah_dcs_ok", "1 if the last DCS read succeeded.", int(s.dcs_ok))
        yield gauge("howdah_request_pending", "1 while a restart/reload/reinitialize waits for the HA loop.",
                    int(self._pending()))


class ArchiveCollector(Collector):
    """The archive-health thread's latest snapshot (nothing when the thread is not running)."""

    def __init__(self, get_status: Callable[[], NodeStatus], get_health: Callable[[], Health | None],
                 wall_clock: Callable[[], float]) -> None:
        self._get_status, self._get_health, self._wall_clock = get_status, get_health, wall_clock

    def collect(self) -> Iterator[Metric]:
        h = self._get_health()
        if h is None or not h.sampled_at:
            return
        s = self._get_status()
        labels = [s.scope, s.name]
        now = self._wall_clock()

        def gauge(name: str, doc: str, value: float) -> Metric:
            g = GaugeMetricFamily(name, doc, labels=["scope", "name"])
            g.add_metric(labels, float(value))
            return g

        def known(value: float | None) -> float:
            return -1.0 if value is None else float(value)

        a = h.archiver
        yield gauge("howdah_archive_active", "1 if this node runs archive_command (archive_mode on and primary, "
                    "or always).", int(a is not None and a.active))
        yield gauge("howdah_archive_archived_count", "WAL files archived (pg_stat_archiver.archived_count), "
                    "-1 if unknown.", known(a.archived_count if a else None))
        yield gauge("howdah_archive_failed_count", "archive_command failures (pg_stat_archiver.failed_count), "
                    "-1 if unknown.", known(a.failed_count if a else None))
        yield gauge("howdah_archive_last_archived_time", "Epoch seconds of the last archived WAL, 0 if none.",
                    (a.last_archived_time or 0.0) if a else 0.0)
        yield gauge("howdah_archive_last_failed_time", "Epoch seconds of the last archive_command failure, 0 if "
                    "none.", (a.last_failed_time or 0.0) if a else 0.0)
        yield gauge("howdah_archive_last_archived_lsn", "LSN (bytes) where the last archived segment ends, 0 if "
                    "none.", h.last_archived_lsn)
        # the WAL file names as numbers (timeline, LSN): a name label would make a new series per segment
        yield gauge("howdah_archive_last_archived_timeline", "Timeline of the last archived WAL file, 0 if none.",
                    wal_timeline(a.last_archived_wal) if a else 0)
        yield gauge("howdah_archive_last_failed_timeline", "Timeline of the WAL file archive_command last failed "
                    "on, 0 if none.", wal_timeline(a.last_failed_wal) if a else 0)
        yield gauge("howdah_archive_last_failed_lsn", "LSN (bytes) where the segment archive_command last failed "
                    "on ends, 0 if none.", (segment_end_lsn(a.last_failed_wal, a.segment_size) or 0) if a else 0)
        yield gauge("howdah_archive_failing", "1 while archive_command's last attempt failed.",
                    int(h.failing_since is not None))
        yield gauge("howdah_archive_failing_seconds", "Seconds archiving has been failing, 0 if it is not.",
                    h.failing_seconds(now))
        yield gauge("howdah_archive_pending_segments", "WAL segments waiting for archive_command (.ready).",
                    h.pending_segments)
        yield gauge("howdah_archive_pending_oldest_seconds", "Age of the oldest segment waiting, 0 if none.",
                    max(0.0, now - h.oldest_pending) if h.oldest_pending is not None else 0.0)
        r = h.repository
        yield gauge("howdah_repository_ok", "1 if the last read of the backup repository succeeded, -1 if "
                    "never read.", -1 if r is None else int(r.ok))
        yield gauge("howdah_repository_checked_time", "Epoch seconds of the last read of the repository.",
                    r.checked_at if r else 0.0)
        yield gauge("howdah_repository_size_bytes", "Bytes stored for this stanza (archive and backups), -1 if "
                    "unknown.", known(r.size_bytes if r else None))
        yield gauge("howdah_backup_count", "Backups in the repository, -1 if unknown.",
                    known(r.backups if r and r.ok else None))
        yield gauge("howdah_backup_newest_time", "Epoch seconds the newest backup ended, 0 if none.",
                    (r.newest_stop or 0.0) if r else 0.0)
        yield gauge("howdah_backup_newest_age_seconds", "Seconds since the newest backup ended, -1 if none.",
                    now - r.newest_stop if r and r.newest_stop else -1.0)
        failures = h.keeper.get("consecutive_failures")
        yield gauge("howdah_backup_consecutive_failures", "Scheduled backups failed in a row (backup keeper), -1 "
                    "if unknown.", known(failures if isinstance(failures, int) else None))
        yield gauge("howdah_volume_size_bytes", "Size of the filesystem holding pg_wal.", h.volume_size)
        yield gauge("howdah_volume_available_bytes", "Bytes available on it.", h.volume_available)
        yield gauge("howdah_volume_growth_bytes_per_second", "Rate its used space grew over the last window.",
                    h.volume_growth)
        yield gauge("howdah_volume_full_seconds", "Seconds until it is full at that rate (+Inf if not growing).",
                    h.seconds_to_full)
        yield gauge("howdah_wal_bytes_per_second", "WAL written per second over the last window (primary).",
                    h.wal_rate)


class DrillCollector(Collector):
    """The restore drills run on this node (``howdahctl backup verify``), from the drill status
    file (howdah.backup.record); nothing before the first drill."""

    def __init__(self, get_status: Callable[[], NodeStatus], path: Callable[[], Path]) -> None:
        self._get_status, self._path = get_status, path

    def collect(self) -> Iterator[Metric]:
        state = record.load(self._path())
        last = state.get("last")
        if not isinstance(last, dict):
            return
        s = self._get_status()
        labels = [s.scope, s.name]

        def gauge(name: str, doc: str, value: object) -> Metric:
            g = GaugeMetricFamily(name, doc, labels=["scope", "name"])
            g.add_metric(labels, _number(value))
            return g

        passed = state.get("last_passed")
        passed = passed if isinstance(passed, dict) else {}
        yield gauge("howdah_backup_drill_last_passed", "1 if the last restore drill passed, 0 if it failed.",
                    int(last.get("result") == "passed"))
        yield gauge("howdah_backup_drill_last_time", "Epoch seconds the last restore drill ended.",
                    _epoch(last.get("finished_at")))
        yield gauge("howdah_backup_drill_last_duration_seconds", "Seconds the last restore drill took.",
                    last.get("seconds"))
        yield gauge("howdah_backup_drill_last_restore_seconds", "Seconds its pgbackrest restore took.",
                    last.get("restore_seconds"))
        yield gauge("howdah_backup_drill_last_replay_seconds", "Seconds its WAL replay and start took.",
                    last.get("replay_seconds"))
        yield gauge("howdah_backup_drill_last_success_time", "Epoch seconds the last passing drill ended, 0 if none.",
                    _epoch(passed.get("finished_at")))
        yield gauge("howdah_backup_drill_consecutive_failures", "Restore drills failed in a row.",
                    state.get("consecutive_failures"))
        info = GaugeMetricFamily("howdah_backup_drill_info", "The backup set the last restore drill restored.",
                                 labels=["scope", "name", "backup", "result"])
        info.add_metric([*labels, str(last.get("backup") or ""), str(last.get("result") or "")], 1.0)
        yield info


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def render_metrics(get_status: Callable[[], NodeStatus], clock: Callable[[], float],
                   pending: Callable[[], bool] = lambda: False,
                   get_health: Callable[[], Health | None] = archive_health.current,
                   wall_clock: Callable[[], float] = time.time) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(get_status, clock, pending))
    registry.register(ArchiveCollector(get_status, get_health, wall_clock))
    registry.register(DrillCollector(get_status, record.status_path))
    return generate_latest(registry)
