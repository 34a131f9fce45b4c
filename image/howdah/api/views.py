"""GET /cluster, /history and /config: the cluster as the DCS holds it.

``cluster_json`` builds the document from one DCS read: the
:class:`~howdah.core.models.ClusterView` plus each member key's raw JSON
(the view's Member keeps only what decide() needs; /cluster also shows
``replication_state``, ``pending_restart`` and ``scheduled_restart``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from howdah.core.manual import scheduled_at
from howdah.core.models import ClusterView, truthy
from howdah.dcs.base import Dcs, build_view, member_data

_LAG_KINDS = (("receive_", "receive_lsn"), ("replay_", "replay_lsn"), ("", "xlog_location"))


@dataclass(frozen=True)
class ClusterRead:
    view: ClusterView
    members: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sync: frozenset[str] = frozenset()
    quorum: bool = False  # the listed standbys are quorum standbys


def read_cluster(dcs: Dcs) -> ClusterRead:
    """One read of the cluster's keys (raises DcsError when unreachable)."""
    nodes, index = dcs.read_nodes()
    if not nodes:
        return ClusterRead(ClusterView())
    members: dict[str, Mapping[str, Any]] = dict(member_data(nodes))
    view = build_view(nodes, index)
    mode = view.config.get("synchronous_mode")
    quorum = isinstance(mode, str) and mode.strip().lower() == "quorum"
    sync = frozenset(view.sync_standbys) if quorum or truthy(mode) else frozenset()
    return ClusterRead(view, members, sync, quorum)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _host_port(conn_url: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(conn_url)
        return parts.hostname, parts.port
    except ValueError:
        return None, None


def member_role(name: str, view: ClusterView, sync: frozenset[str], quorum: bool = False) -> str:
    if view.leader is not None and view.leader.name == name:
        return "standby_leader" if view.config.get("standby_cluster") else "leader"
    if name in sync:
        return "quorum_standby" if quorum else "sync_standby"
    return "replica"


def cluster_json(read: ClusterRead, scope: str,
                 scheduled_restarts: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The ``GET /cluster`` document."""
    view = read.view
    cluster_lsn = view.optime or 0
    members = []
    for m in view.members:
        data = read.members.get(m.name, {})
        role = member_role(m.name, view, read.sync, read.quorum)
        state = m.state if role == "leader" else (str(data.get("replication_state") or "") or m.state)
        doc: dict[str, Any] = {"name": m.name, "role": role, "state": state, "api_url": m.api_url or None}
        host, port = _host_port(m.conn_url)
        if host:
            doc["host"] = host
            if port:
                doc["port"] = port
        if m.timeline:
            doc["timeline"] = m.timeline
        if data.get("pending_restart"):
            doc["pending_restart"] = True
            if data.get("pending_restart_reason"):
                doc["pending_restart_reason"] = data["pending_restart_reason"]
        restart = (scheduled_restarts or {}).get(m.name) or data.get("scheduled_restart")
        if restart:
            doc["scheduled_restart"] = restart
        if m.tags:
            doc["tags"] = dict(m.tags)
        if role not in ("leader", "standby_leader"):
            for prefix, key in _LAG_KINDS:
                lsn = _as_int(data.get(key))
                if not lsn:
                    doc[f"{prefix}lsn"] = doc[f"{prefix}lag"] = "unknown"
                else:
                    doc[f"{prefix}lsn"] = format_lsn(lsn)
                    doc[f"{prefix}lag"] = max(cluster_lsn - lsn, 0)
        members.append(doc)
    out: dict[str, Any] = {"members": members, "scope": scope}
    if truthy(view.config.get("pause")):
        out["pause"] = True
    fo = view.failover
    if fo and fo.get("scheduled_at") and scheduled_at(fo) is not None:
        sw: dict[str, Any] = {"at": fo["scheduled_at"]}
        if fo.get("leader"):
            sw["from"] = fo["leader"]
        if fo.get("member"):
            sw["to"] = fo["member"]
        out["scheduled_switchover"] = sw
    return out


def history_json(view: ClusterView) -> list[list[Any]]:
    return [list(h) for h in view.history]


def dumps(doc: Any) -> str:
    return json.dumps(doc, default=str)
