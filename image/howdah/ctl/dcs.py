"""DCS access for howdahctl: the agent's DCS interface plus what only an operator does."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from howdah.core.models import ClusterView, Member
from howdah.dcs import DcsConfig, open_backend
from howdah.dcs.base import DcsError, build_view, member_data, sync_data

from .errors import CtlError

# Every DCS failure is caught as Exception: a backend may let its client library's
# errors out on odd answers (python-etcd's EtcdException for a proxy's HTML page),
# and an operator gets one line, not a traceback.


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


DCS_NAMES = {"etcd": "etcd", "etcd3": "etcd", "kubernetes": "the Kubernetes API"}


def unreachable(exc: Exception, where: str, kind: str = "etcd") -> CtlError:
    """One short line for a DCS that did not answer."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    reason = match.group(1) if match else ("timed out" if "timed out" in text.lower()
                                           else text.splitlines()[0] if text else "no answer")
    if text.lower().startswith("bad response"):
        reason = "unexpected answer (is it etcd, with the v2 API enabled?)"
    if ": " in reason and not match and reason.startswith(("etcd", "kubernetes")):
        reason = reason.split(": ", 1)[1] or reason
    return CtlError(f"cannot reach {DCS_NAMES.get(kind, kind)} at {where}: "
                    f"{reason.strip().lower()}")


class CtlDcs:
    """The agent's DCS interface plus what only an operator does: a raw snapshot,
    config compare-and-swap, a failover key and a cluster wipe."""

    def __init__(self, cfg: DcsConfig, scope: str) -> None:
        self.kind = cfg.dcs_kind
        self.dcs = open_backend(cfg.dcs_kind, cfg.dcs, cfg.namespace, scope, "howdahctl",
                                request_timeout=5.0)
        self.scope = scope
        self.prefix = self.dcs.prefix

    def _fail(self, exc: Exception) -> CtlError:
        return unreachable(exc, self.dcs.where, self.kind)

    def snapshot(self) -> Snapshot:
        try:
            nodes, index = self.dcs.read_nodes()
        except Exception as exc:
            raise self._fail(exc) from None
        if not nodes:
            return Snapshot(ClusterView(), self.scope)
        return Snapshot(view=build_view(nodes, index), scope=self.scope,
                        member_data=member_data(nodes), sync=sync_data(nodes))

    def existing(self) -> Snapshot:
        """A snapshot of a cluster that must exist."""
        snap = self.snapshot()
        if not snap.view.members and snap.view.initialize is None and not snap.view.config:
            raise CtlError(f"cluster {self.scope!r} not found in the DCS under {self.prefix}")
        return snap

    def cas_config(self, config: Mapping[str, Any], index: int | None) -> None:
        try:
            ok = self.dcs.write_config(config, index)
        except Exception as exc:
            raise self._fail(exc) from None
        if not ok:
            raise CtlError("the config changed in the DCS meanwhile (compare-and-swap failed); "
                           "nothing written, run the command again")

    def put_failover(self, value: Mapping[str, Any]) -> None:
        try:
            self.dcs.write_failover(value)
        except Exception as exc:
            raise self._fail(exc) from None

    def wipe(self) -> None:
        """Delete every key of the cluster (everything under /<namespace>/<scope>)."""
        try:
            found = self.dcs.wipe()
        except Exception as exc:
            raise self._fail(exc) from None
        if not found:
            raise CtlError(f"cluster {self.scope!r} not found in the DCS under {self.prefix}")
