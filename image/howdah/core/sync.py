"""Synchronous replication: which standbys are synchronous, changed in a safe order.

The `sync` key names the standbys that may be promoted in synchronous mode:
each of them has every transaction the leader acknowledged.  To keep that
true the leader changes things in this order:

- removing a standby: first from the key, then from synchronous_standby_names
  (once out of the key it can no longer be promoted, so commits that it no
  longer acknowledges cannot be lost through it);
- adding a standby: first to synchronous_standby_names, and only once
  pg_stat_replication reports it as `sync`, to the key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

from howdah.core.models import truthy


@dataclass(frozen=True)
class SyncStep:
    """At most one of each; the executor writes the key first when both are set."""

    key: tuple[str, ...] | None = None  # new sync_standby list for the DCS key
    ssn: tuple[str, ...] | None = None  # new members of synchronous_standby_names
    detail: str = ""


def ssn_value(names: Sequence[str], count: int, strict: bool) -> str:
    """synchronous_standby_names for these standbys ('*' keeps strict mode blocking)."""
    if not names:
        return "*" if strict else ""
    quoted = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
    return f"{min(count, len(names))} ({quoted})"


def candidates(replication: Sequence[Mapping[str, Any]],
               tags: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Streaming standbys allowed to be synchronous, best first (by application_name)."""
    names = []
    for row in replication:
        name = str(row.get("application_name") or "")
        if row.get("state") != "streaming" or name not in tags:
            continue
        if truthy(tags[name].get("nosync")):
            continue
        names.append(name)
    return sorted(names)


def plan(key: Sequence[str], ssn: Sequence[str], replication: Sequence[Mapping[str, Any]],
         tags: Mapping[str, Mapping[str, Any]], count: int,
         caught_up: Collection[str] | None = None) -> SyncStep | None:
    """The next safe step from (key, ssn) towards the wanted synchronous set.

    A standby joins the key only once postgres reports it synchronous and,
    when `caught_up` is given, it is in it: it flushed the WAL written up to
    the moment synchronous_standby_names started to name it, so it also has
    the commits acknowledged before then."""
    usable = candidates(replication, tags)
    sync_now = {str(r.get("application_name")) for r in replication
                if r.get("sync_state") in ("sync", "quorum")}
    if caught_up is not None:
        sync_now &= set(caught_up)
    wanted = [n for n in key if n in usable][:count]
    for name in usable:
        if len(wanted) >= count:
            break
        if name not in wanted:
            wanted.append(name)
    gone = [n for n in key if n not in wanted]
    if gone:
        return SyncStep(key=tuple(n for n in key if n in wanted),
                        detail=f"{', '.join(gone)} no longer synchronous")
    if tuple(sorted(ssn)) != tuple(sorted(wanted)):
        return SyncStep(ssn=tuple(wanted), detail="synchronous_standby_names -> "
                        + (", ".join(wanted) or "none"))
    confirmed = tuple(n for n in wanted if n in sync_now)
    if tuple(sorted(confirmed)) != tuple(sorted(key)):
        return SyncStep(key=confirmed, detail="sync key -> " + (", ".join(confirmed) or "none"))
    return None


def may_promote(name: str, sync_leader: str | None, sync_standbys: Sequence[str],
                synchronous_mode: bool) -> bool:
    """In synchronous mode only a listed synchronous standby may take over."""
    if not synchronous_mode or sync_leader is None:
        return True
    return name in sync_standbys or name == sync_leader
