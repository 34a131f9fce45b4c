"""DCS access for howdahctl: the agent's etcd v2 client plus what only an operator does."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import etcd

from howdah.core.models import ClusterView, Member
from howdah.dcs.base import DcsError, build_view, parse_json
from howdah.dcs.etcd2 import EtcdV2

from .errors import CtlError


@dataclass(frozen=True)
class Snapshot:
    """One recursive read: the agent's ClusterView plus the raw bits the view leaves out."""

    view: ClusterView
    scope: str
    member_data: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sync: Mapping[str, Any] = field(default_factory=dict)

    @property
    def leader_name(self) -> str | None:
        return self.view.leader.name if self.view.leader else None

    @property
    def sync_standbys(self) -> set[str]:
        raw = self.sync.get("sync_standby") if self.sync.get("leader") == self.leader_name else None
        return {s.strip() for s in str(raw or "").split(",") if s.strip()}

    @property
    def paused(self) -> bool:
        return bool(self.view.config.get("pause"))

    def member(self, name: str) -> Member:
        found = self.view.member(name)
        if found is None:
            known = ", ".join(m.name for m in self.view.members) or "none"
            raise CtlError(f"{name!r} is not a member of cluster {self.scope!r} (members: {known})")
        return found


def unreachable(exc: Exception, hosts: list[tuple[str, int]]) -> CtlError:
    """One short line for a DCS that did not answer."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    reason = match.group(1) if match else ("timed out" if "timed out" in text.lower()
                                           else text.splitlines()[0] if text else "no answer")
    if text.lower().startswith("bad response"):
        reason = "unexpected answer (is it etcd, with the v2 API enabled?)"
    where = ", ".join(f"{h}:{p}" for h, p in hosts)
    return CtlError(f"cannot reach etcd at {where}: {reason.strip().lower()}")


class CtlDcs(EtcdV2):
    """EtcdV2 with a raw snapshot, config compare-and-swap and a cluster wipe."""

    def __init__(self, cfg: Mapping[str, Any], namespace: str, scope: str) -> None:
        super().__init__(cfg, namespace, scope, "howdahctl", request_timeout=5.0)
        self.scope = scope

    def snapshot(self) -> Snapshot:
        try:
            result = self._call(lambda c: c.read(self.prefix, recursive=True, timeout=self.timeout))
        except etcd.EtcdKeyNotFound:
            return Snapshot(ClusterView(), self.scope)
        except (DcsError, etcd.EtcdException) as exc:
            raise unreachable(exc, self.hosts) from None
        nodes: dict[str, tuple[str | None, int]] = {}
        for node in result.leaves:
            if node.key is None or node.dir:
                continue
            nodes[node.key[len(self.prefix) + 1:]] = (node.value, int(node.modifiedIndex or 0))
        members = {k.split("/", 1)[1]: parse_json(v, {}) for k, (v, _) in nodes.items()
                   if k.startswith("members/") and k.count("/") == 1}
        sync = parse_json(nodes.get("sync", (None, 0))[0], {})
        return Snapshot(view=build_view(nodes, int(result.etcd_index or 0)), scope=self.scope,
                        member_data={k: v for k, v in members.items() if isinstance(v, dict)},
                        sync=sync if isinstance(sync, dict) else {})

    def existing(self) -> Snapshot:
        """A snapshot of a cluster that must exist."""
        snap = self.snapshot()
        if not snap.view.members and snap.view.initialize is None and not snap.view.config:
            raise CtlError(f"cluster {self.scope!r} not found in the DCS under {self.prefix}")
        return snap

    def cas_config(self, config: Mapping[str, Any], index: int | None) -> None:
        try:
            ok = self.write_config(config, index)
        except (DcsError, etcd.EtcdException) as exc:
            raise unreachable(exc, self.hosts) from None
        if not ok:
            raise CtlError("the config changed in the DCS meanwhile (compare-and-swap failed); "
                           "nothing written, run the command again")

    def put_failover(self, value: Mapping[str, Any]) -> None:
        try:
            self._write("failover", json.dumps(dict(value), separators=(",", ":")))
        except (DcsError, etcd.EtcdException) as exc:
            raise unreachable(exc, self.hosts) from None

    def wipe(self) -> None:
        """Delete every key of the cluster (the whole /<namespace>/<scope> directory)."""
        try:
            self._call(lambda c: c.delete(self.prefix, recursive=True, dir=True,
                                          timeout=self.timeout))
        except etcd.EtcdKeyNotFound:
            raise CtlError(f"cluster {self.scope!r} not found in the DCS under {self.prefix}") from None
        except (DcsError, etcd.EtcdException) as exc:
            raise unreachable(exc, self.hosts) from None
