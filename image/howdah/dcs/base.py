"""The narrow interface the agent needs from a DCS."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from howdah.core.models import ClusterView, Leader, Member


class DcsError(Exception):
    """The DCS could not be reached (not a failed compare-and-swap)."""


# {key relative to /<namespace>/<scope>/: (value, revision)}; the revision is
# whatever the backend compares on (etcd v2 modifiedIndex, etcd v3 mod_revision,
# Kubernetes resourceVersion as an int).
Nodes = dict[str, tuple[str | None, int]]


@dataclass(frozen=True)
class Capabilities:
    """What differs between backends; users test flags, never class names."""

    leases: bool = False          # ttl keys are bound to leases kept alive by the backend
    watch_expiry: bool = True     # a leader watch wakes the moment the leader ttl runs out
    recursive_read: bool = True   # one request reads every key of the cluster
    role_labels: bool = False     # the backend keeps a role label on the pod
    member_expiry: bool = True    # member keys vanish `ttl` after their last touch (Kubernetes:
                                  # a member is its pod and lasts as long as the pod)


class Dcs(Protocol):
    """Key layout of CONTRACT §2 under /<namespace>/<scope>/.

    Every user of the DCS (agent, REST API, howdahctl) holds this, built by
    howdah.dcs.open_dcs(); a failed compare-and-swap returns False, a DCS that
    does not answer raises DcsError.
    """

    capabilities: Capabilities
    prefix: str   # "/<namespace>/<scope>", for messages
    where: str    # the endpoints, for messages ("127.0.0.1:2379,...")

    def set_timeout(self, request_timeout: float) -> None: ...
    def read_nodes(self) -> tuple[Nodes, int]: ...
    def get_cluster(self) -> ClusterView: ...
    def acquire_leader(self, ttl: int) -> bool: ...
    def renew_leader(self, ttl: int) -> bool: ...
    def release_leader(self) -> bool: ...
    def evict_leader(self, name: str, index: int) -> bool: ...
    def hand_leader(self, target: str, ttl: int) -> bool: ...
    def write_failover(self, value: Mapping[str, Any], index: int | None = None) -> bool: ...
    def clear_failover(self) -> bool: ...
    def touch_member(self, data: Mapping[str, Any], ttl: int) -> None: ...
    def delete_member(self) -> None: ...
    def take_initialize(self) -> bool: ...
    def set_initialize(self, sysid: str) -> bool: ...
    def clear_initialize(self, index: int | None = None) -> bool: ...
    def write_config(self, config: Mapping[str, Any], index: int | None) -> bool: ...
    def write_status(self, optime: int, slots: Mapping[str, int],
                     retain: Sequence[str] | None = None) -> None: ...
    def write_sync(self, leader: str | None, standbys: tuple[str, ...],
                   index: int | None, quorum: int = 0) -> bool: ...
    def delete_sync(self) -> bool: ...
    def write_history(self, history: list[list[Any]]) -> None: ...
    def write_failsafe(self, members: Mapping[str, str]) -> None: ...
    def watch_leader(self, view: ClusterView, timeout: float, eager: bool = False) -> bool: ...
    def wipe(self) -> bool: ...


def parse_json(raw: str | None, default: Any) -> Any:
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def parse_member(name: str, raw: str | None) -> Member:
    data = parse_json(raw, {})
    if not isinstance(data, dict):
        data = {}
    raw_tags = data.get("tags")
    tags: dict[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}

    def as_int(key: str) -> int:
        try:
            return int(data.get(key) or 0)
        except (TypeError, ValueError):
            return 0

    return Member(
        name=name,
        role=str(data.get("role", "uninitialized")),
        state=str(data.get("state", "stopped")),
        conn_url=str(data.get("conn_url", "")),
        api_url=str(data.get("api_url", "")),
        xlog_location=as_int("xlog_location"),
        timeline=as_int("timeline"),
        tags=tags,
        version=str(data.get("version", "")),
    )


def member_data(nodes: Mapping[str, tuple[str | None, int]]) -> dict[str, dict[str, Any]]:
    """Each member key's raw JSON object, by member name."""
    out: dict[str, dict[str, Any]] = {}
    for key, (value, _) in nodes.items():
        if key.startswith("members/") and key.count("/") == 1:
            data = parse_json(value, {})
            out[key.split("/", 1)[1]] = data if isinstance(data, dict) else {}
    return out


def sync_data(nodes: Mapping[str, tuple[str | None, int]]) -> dict[str, Any]:
    sync = parse_json(nodes.get("sync", (None, 0))[0], {})
    return sync if isinstance(sync, dict) else {}


def dumps(value: Any) -> str:
    """JSON as every backend writes it (compact, like Patroni)."""
    return json.dumps(value, separators=(",", ":"))


def build_view(nodes: Mapping[str, tuple[str | None, int]], etcd_index: int) -> ClusterView:
    """Turn {relative key: (value, modifiedIndex)} into a ClusterView."""
    members = tuple(
        sorted(
            (parse_member(k.split("/", 1)[1], v) for k, (v, _) in nodes.items()
             if k.startswith("members/") and k.count("/") == 1),
            key=lambda m: m.name,
        )
    )
    leader = None
    if "leader" in nodes and nodes["leader"][0]:
        value, idx = nodes["leader"]
        leader = Leader(name=str(value), index=idx)
    init = nodes["initialize"][0] if "initialize" in nodes else None
    config = parse_json(nodes.get("config", (None, 0))[0], {})
    status = parse_json(nodes.get("status", (None, 0))[0], {})
    optime: int | None = None
    slots: dict[str, int] = {}
    retain: tuple[str, ...] = ()
    if isinstance(status, dict):
        try:
            optime = int(status["optime"]) if status.get("optime") is not None else None
        except (TypeError, ValueError):
            optime = None
        raw_slots = status.get("slots") or {}
        if isinstance(raw_slots, dict):
            slots = {str(k): int(v) for k, v in raw_slots.items() if isinstance(v, int)}
        raw_retain = status.get("retain_slots") or []
        if isinstance(raw_retain, list):
            retain = tuple(str(x) for x in raw_retain if isinstance(x, str))
    if optime is None and "optime/leader" in nodes:
        try:
            optime = int(nodes["optime/leader"][0] or 0)
        except ValueError:
            optime = None
    history = parse_json(nodes.get("history", (None, 0))[0], [])
    failsafe = parse_json(nodes.get("failsafe", (None, 0))[0], None) if "failsafe" in nodes else None
    failover = parse_json(nodes.get("failover", (None, 0))[0], {})
    sync = parse_json(nodes.get("sync", (None, 0))[0], {})
    sync = sync if isinstance(sync, dict) else {}
    raw_standbys = sync.get("sync_standby") or ""
    return ClusterView(
        sync_leader=str(sync["leader"]) if sync.get("leader") else None,
        sync_standbys=tuple(s for s in str(raw_standbys).split(",") if s),
        sync_index=nodes["sync"][1] if "sync" in nodes else None,
        sync_quorum=_quorum_of(sync),
        initialize=init if init is None else str(init),
        initialize_index=nodes["initialize"][1] if "initialize" in nodes else None,
        config=config if isinstance(config, dict) else {},
        config_index=nodes["config"][1] if "config" in nodes else None,
        leader=leader,
        members=members,
        optime=optime,
        slots=slots,
        retain_slots=retain,
        failsafe={str(k): str(v) for k, v in failsafe.items()} if isinstance(failsafe, dict) else None,
        history=tuple(tuple(h) for h in history if isinstance(h, list)),
        failover=failover if isinstance(failover, dict) else {},
        index=etcd_index,
    )


def status_json(optime: int, slots: Mapping[str, int], retain: Sequence[str] | None) -> str:
    """The /status value as Patroni 4 writes it: optime, slots, retain_slots."""
    return dumps({"optime": optime, "slots": dict(slots) or None,
                  "retain_slots": sorted(retain) if retain else None})


def _quorum_of(sync: Mapping[str, Any]) -> int:
    try:
        return max(0, int(sync.get("quorum") or 0))
    except (TypeError, ValueError):
        return 0


def sync_value(leader: str | None, standbys: tuple[str, ...], quorum: int = 0) -> str:
    """The sync key's JSON as Patroni 4 writes it (sorted names, compact)."""
    return json.dumps({"leader": leader, "quorum": quorum,
                       "sync_standby": ",".join(sorted(standbys)) or None},
                      separators=(",", ":"))
