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

import re
from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

from howdah.core.models import truthy


@dataclass(frozen=True)
class SyncStep:
    """At most one of each; the executor writes the key first when both are set."""

    key: tuple[str, ...] | None = None  # new sync_standby list for the DCS key
    ssn: tuple[str, ...] | None = None  # new members of synchronous_standby_names
    detail: str = ""


_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def quote_name(name: str) -> str:
    """A standby name as synchronous_standby_names needs it: plain lower-case
    identifiers bare (as Patroni writes them), anything else double-quoted."""
    if _PLAIN.fullmatch(name) and name not in ("any", "first"):
        return name
    return '"' + name.replace('"', '""') + '"'


def ssn_value(names: Sequence[str], count: int, strict: bool, quorum: bool = False) -> str:
    """synchronous_standby_names for these standbys, in Patroni's shapes: 'a',
    'k (a,b)', or 'ANY k (a,b)' in quorum mode; '*' keeps strict mode blocking."""
    if not names:
        return "*" if strict else ""
    listed = ",".join(quote_name(n) for n in sorted(names))
    k = max(0, min(count, len(names)))
    if quorum:
        return f"ANY {k} ({listed})"
    if len(names) == 1:
        return listed
    return f"{k} ({listed})"


def sync_priority(tags: Mapping[str, Any]) -> int:
    """The sync_priority tag (Patroni 4.1): 0 with nosync set, else the tag
    (1 when absent or unreadable)."""
    if truthy(tags.get("nosync")):
        return 0
    try:
        return int(tags["sync_priority"]) if "sync_priority" in tags else 1
    except (TypeError, ValueError):
        return 1


def nosync(tags: Mapping[str, Any]) -> bool:
    """Never synchronous: a nosync tag that is set (true or false) decides,
    without it sync_priority <= 0 (Patroni's rule)."""
    if tags.get("nosync") is not None:
        return truthy(tags.get("nosync"))
    return "sync_priority" in tags and sync_priority(tags) <= 0


def candidates(replication: Sequence[Mapping[str, Any]],
               tags: Mapping[str, Mapping[str, Any]],
               flushed: Mapping[str, int] | None = None, max_lag: int = -1) -> list[str]:
    """Streaming standbys allowed to be synchronous, best first: higher
    sync_priority, then by application_name.  With maximum_lag_on_syncnode
    (max_lag > 0) a standby that flushed more than that behind the most
    advanced one is left out."""
    flushed = flushed or {}
    best = max(flushed.values(), default=0)
    ranked = []
    for row in replication:
        name = str(row.get("application_name") or "")
        if row.get("state") != "streaming" or name not in tags:
            continue
        if nosync(tags[name]):
            continue
        priority = sync_priority(tags[name])
        if max_lag > 0 and name in flushed and best - flushed[name] > max_lag:
            continue
        ranked.append((-priority, name))
    return [name for _, name in sorted(ranked)]


def plan(key: Sequence[str], ssn: Sequence[str], replication: Sequence[Mapping[str, Any]],
         tags: Mapping[str, Mapping[str, Any]], count: int,
         caught_up: Collection[str] | None = None,
         usable: Sequence[str] | None = None) -> SyncStep | None:
    """The next safe step from (key, ssn) towards the wanted synchronous set.

    A standby joins the key only once postgres reports it synchronous and,
    when `caught_up` is given, it is in it: it flushed the WAL written up to
    the moment synchronous_standby_names started to name it, so it also has
    the commits acknowledged before then."""
    if usable is None:
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
