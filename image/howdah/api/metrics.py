"""GET /metrics: Prometheus exposition of this node's status.

Names follow Patroni's (``patroni_*`` with ``{scope, name}`` labels) so
existing dashboards and alerts keep working; ``howdah_*`` ones add what only
Howdah knows (lease, HA loop age).  Every metric is a gauge: prometheus_client
would rename a counter to ``*_total``, which Patroni's names do not have.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from howdah.api.status import PRIMARY, REPLICA, RUNNING, STANDBY_LEADER, NodeStatus

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
        yield gauge("patroni_failsafe_mode_is_active", "1 if failsafe mode is active, 0 otherwise.", 0)
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


def render_metrics(get_status: Callable[[], NodeStatus], clock: Callable[[], float],
                   pending: Callable[[], bool] = lambda: False) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(get_status, clock, pending))
    return generate_latest(registry)
