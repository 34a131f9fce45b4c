"""Which replication slots a node keeps, as Patroni 4 does: pure functions.

Every node keeps a physical slot for every other member (so a promoted replica
already holds one for each follower), the permanent slots of the dynamic
config (`slots:`), and the slots of members that left less than
`member_slots_ttl` ago (the leader lists them in /status `retain_slots`).
Slots matched by `ignore_slots` are never touched; any other slot is dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from howdah.core.models import ClusterView, Member, truthy

NAME_RE = re.compile(r"^[a-z0-9_]{1,63}$")
_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "h": 3600, "d": 86400}


def slot_name(member: str) -> str:
    """A member's physical slot name: lower case, [a-z0-9_], at most 63 chars."""
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in member.lower())
    return cleaned[:63]


@dataclass(frozen=True)
class SlotSpec:
    name: str
    type: str = "physical"          # "physical" or "logical"
    database: str | None = None     # logical only
    plugin: str | None = None       # logical only
    lsn: int | None = None          # the leader's position (/status), when known
    # a follower streams from it here (never advanced); None: not known (a
    # retained slot of a member that left), so never dropped for its xmin
    expected_active: bool | None = False
    permanent: bool = False


def parse_duration(value: Any, field: str) -> int:
    """Seconds from 1800, "1800", "30min", "2h" (Patroni's units); ValueError names the field."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: must be a duration such as 1800 or '30min', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{field}: must be >= 0, got {value!r}")
        return int(value)
    text = str(value).strip().lower()
    m = re.fullmatch(r"(\d+)\s*([a-z]*)", text)
    if m is None or (m.group(2) and m.group(2) not in _UNITS):
        raise ValueError(f"{field}: must be a duration such as 1800 or '30min' "
                         f"(units ms, s, min, h, d), got {value!r}")
    return int(int(m.group(1)) * _UNITS.get(m.group(2) or "s", 1))


def parse_permanent(config: Any) -> tuple[dict[str, SlotSpec], list[str]]:
    """The `slots` section: ({name: spec}, errors).  A bad entry is skipped
    with a one-line error naming it, as Patroni skips it."""
    out: dict[str, SlotSpec] = {}
    errors: list[str] = []
    if not config:
        return out, errors
    if not isinstance(config, Mapping):
        return out, [f"slots: must be a mapping of slot name to {{type: ...}}, got {config!r}"]
    for name, value in config.items():
        name = str(name)
        if not NAME_RE.match(name):
            errors.append(f"slots.{name}: a slot name may only contain lower case letters, "
                          "digits and '_' (at most 63); rename it")
            continue
        value = value or {}
        if not isinstance(value, Mapping):
            errors.append(f"slots.{name}: must be a mapping such as {{type: physical}}")
            continue
        kind = value.get("type") or ("logical" if value.get("database") and value.get("plugin")
                                     else "physical")
        if kind == "physical":
            out[name] = SlotSpec(name, "physical", permanent=True)
        elif kind == "logical":
            if not value.get("database") or not value.get("plugin"):
                errors.append(f"slots.{name}: a logical slot needs both database and plugin")
                continue
            out[name] = SlotSpec(name, "logical", str(value["database"]), str(value["plugin"]),
                                 permanent=True)
        else:
            errors.append(f"slots.{name}.type: must be physical or logical, got {kind!r}")
    return out, errors


def parse_ignore(config: Any) -> tuple[tuple[Mapping[str, str], ...], list[str]]:
    """`ignore_slots`: a list of {name, type, database, plugin} matchers."""
    if not config:
        return (), []
    if not isinstance(config, list):
        return (), [f"ignore_slots: must be a list of {{name, type, database, plugin}}, "
                    f"got {config!r}"]
    rules, errors = [], []
    for i, rule in enumerate(config):
        if not isinstance(rule, Mapping):
            errors.append(f"ignore_slots[{i}]: must be a mapping such as {{name: myslot}}")
            continue
        rules.append({k: str(v) for k, v in rule.items()
                      if k in ("name", "type", "database", "plugin") and v is not None})
    return tuple(rules), errors


def is_ignored(rules: Iterable[Mapping[str, str]], name: str, kind: str,
               database: str | None, plugin: str | None) -> bool:
    have = {"name": name, "type": kind, "database": database, "plugin": plugin}
    return any(all(not want or have[key] == want for key, want in rule.items())
               for rule in rules)


def nostream(m: Member | None) -> bool:
    return m is not None and truthy((m.tags or {}).get("nostream"))


def _replicatefrom(m: Member) -> str | None:
    value = (m.tags or {}).get("replicatefrom")
    return str(value) if value else None


def streams(view: ClusterView, me: str, tags: Mapping[str, Any]) -> bool:
    """This node's WAL reaches the primary through streaming (no nostream on
    it or on any node up its replicatefrom chain): only then may it keep
    logical slots, which need hot_standby_feedback to reach the primary."""
    seen = set()
    name, cur_tags = me, tags
    while True:
        if truthy((cur_tags or {}).get("nostream")):
            return False
        seen.add(name)
        up = (cur_tags or {}).get("replicatefrom")
        member = view.member(str(up)) if up and up != name else None
        if member is None:
            return True
        if member.name in seen:
            return False
        name, cur_tags = member.name, member.tags


def wanted(view: ClusterView, me: str, tags: Mapping[str, Any], leading: bool,
           permanent: Mapping[str, SlotSpec], member_slots_ttl: int,
           standby_cluster: bool) -> dict[str, SlotSpec]:
    """The slots this node keeps; `leading`: primary or standby leader."""
    nofailover = truthy((tags or {}).get("nofailover"))
    names = {m.name for m in view.members}
    others = [m for m in view.members if m.name != me and not nostream(m)]
    leader = view.leader.name if view.leader else None

    def active_here(m: Member) -> bool:
        up = _replicatefrom(m)
        if leading:
            return up is None or up == me or up not in names
        return up == me and m.name != leader

    if member_slots_ttl > 0:
        keep = [m for m in others if not nofailover or _replicatefrom(m) == me]
    else:
        keep = [m for m in others if active_here(m)]
    out: dict[str, SlotSpec] = {}
    for m in keep:
        name = slot_name(m.name)
        lsn = view.slots.get(name, 0)
        if _replicatefrom(m):
            lsn = max(m.xlog_location or 0, lsn)
        out.setdefault(name, SlotSpec(name, lsn=lsn, expected_active=active_here(m)))
    mine = slot_name(me)
    if not nofailover:
        for name in view.retain_slots:
            if name not in out and name != mine:
                out[name] = SlotSpec(name, expected_active=None)
    if nofailover:
        return out
    logical_ok = not standby_cluster and streams(view, me, tags)
    topology = {slot_name(m.name): _replicatefrom(m) for m in view.members}
    for name, spec in permanent.items():
        if spec.type == "physical":
            if name in out or name == mine:
                continue
            out[name] = SlotSpec(name, lsn=view.slots.get(name), permanent=True,
                                 expected_active=leading and not topology.get(name))
        elif logical_ok and name not in out:
            out[name] = SlotSpec(name, "logical", spec.database, spec.plugin,
                                 lsn=view.slots.get(name), permanent=True)
    return out


def has_logical(permanent: Mapping[str, SlotSpec]) -> bool:
    return any(s.type == "logical" for s in permanent.values())


def publishable(existing: Mapping[str, Mapping[str, Any]], want: Mapping[str, SlotSpec],
                me: str, wal_position: int, member_slots_ttl: int) -> dict[str, int]:
    """The leader's /status `slots`: each wanted slot's position (physical:
    restart_lsn, logical: confirmed_flush_lsn) and its own member slot at its
    current WAL position.  Without member slot retention only permanent ones."""
    out: dict[str, int] = {}
    for name, row in existing.items():
        spec = want.get(name)
        if spec is None or spec.type != row.get("type"):
            continue
        lsn = row.get("confirmed_flush_lsn") if spec.type == "logical" else row.get("restart_lsn")
        if lsn:
            out[name] = int(lsn)
    out[slot_name(me)] = wal_position
    if member_slots_ttl <= 0:
        out = {n: v for n, v in out.items() if n in want and want[n].permanent}
    return out


def retain(previous: Mapping[str, float], view: ClusterView, me: str,
           published: Mapping[str, int], permanent: Mapping[str, SlotSpec],
           member_slots_ttl: int, now: float) -> dict[str, float]:
    """{member slot name: last time its member was seen}, expired after
    member_slots_ttl; the names go to /status `retain_slots`."""
    out = dict(previous)
    if published:
        members = {slot_name(m.name) for m in view.members if not nostream(m)}
        if view.member(me) is None:
            members.add(slot_name(me))
        for name in published:
            if name in members and name not in permanent:
                out[name] = now
    return {n: t for n, t in out.items() if t + member_slots_ttl > now}


def to_drop(existing: Mapping[str, Mapping[str, Any]], want: Mapping[str, SlotSpec],
            rules: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    """[(slot, why)] to drop: unknown ones, lost ones, logical ones whose
    plugin or database changed.  Ignored slots are never listed."""
    out: list[tuple[str, str]] = []
    for name, row in sorted(existing.items()):
        if is_ignored(rules, name, str(row.get("type")), row.get("database"), row.get("plugin")):
            continue
        spec = want.get(name)
        if spec is None:
            out.append((name, "not a member's, retained or permanent slot"))
        elif row.get("wal_status") == "lost":
            out.append((name, "its WAL is lost (wal_status = lost); it is recreated"))
        elif spec.type != row.get("type"):
            out.append((name, f"it is {row.get('type')} but configured {spec.type}"))
        elif spec.type == "logical" and (spec.database, spec.plugin) != (
                row.get("database"), row.get("plugin")):
            out.append((name, f"its database/plugin changed to {spec.database}/{spec.plugin}"))
        elif (spec.type == "physical" and row.get("restart_lsn") is None
              and not row.get("active") and spec.expected_active is False):
            out.append((name, "it reserves no WAL (made outside Howdah); it is recreated"))
    return out
