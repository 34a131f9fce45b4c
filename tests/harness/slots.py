"""Replication slot measurements on a running cluster (either agent): used by
tests/local/test_slots.py, bench/slots.py and, after a fault campaign, by the
campaign (stale_slots / wait_no_stale_slots).

- SlotTrail: how far a replica's copies of the leader's slots trail the leader,
  in seconds: at each sample, how long ago the leader's slot was last at (or
  before) the position the replica's copy has now; 0 while they are equal.
- stale_slots: inactive slots that nobody will use (issue 11: "no inactive slot
  older than member_slots_ttl"): on each node, every inactive slot that is not
  permanent, not a current member's, not in the leader's /status retain_slots
  (which the leader empties member_slots_ttl after a member left) and not
  ignored.  PostgreSQL 15 has no inactive_since, so age is judged through
  retain_slots, as both agents keep it.
"""
from __future__ import annotations

import bisect
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .waiting import wait_until

if TYPE_CHECKING:
    from .cluster import LocalCluster
    from .node import AgentNode

LEADER_SQL = ("SELECT pg_current_wal_lsn() - '0/0', (SELECT confirmed_flush_lsn - '0/0'"
              " FROM pg_replication_slots WHERE slot_name = %s)")
REPLICA_SQL = ("SELECT slot_name, coalesce(confirmed_flush_lsn, restart_lsn) - '0/0'"
               " FROM pg_replication_slots WHERE NOT temporary")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass
class SlotTrail:
    """Writes on the leader (and a consumer confirming the logical slot), while
    both nodes are sampled every `interval` s; use as a context manager.
    Tracked: the logical slot `logical` and the replica's physical slot for the
    leader (at the leader's current WAL position)."""

    leader: "AgentNode"
    replica: "AgentNode"
    logical: str = "perm_log"
    interval: float = 0.25
    table: str = "slot_trail"
    leader_samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    replica_samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    errors: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.physical = self.leader.name

    def __enter__(self) -> "SlotTrail":
        self.leader.sql(f"CREATE TABLE IF NOT EXISTS {self.table} (v int)")
        for target in (self._write, self._sample):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _write(self) -> None:
        """An INSERT every 0.1 s; the consumer confirms everything every 0.5 s."""
        n = 0
        while not self._stop.wait(0.1):
            n += 1
            try:
                self.leader.sql(f"INSERT INTO {self.table} VALUES (%s)", (n,))
                if n % 5 == 0:
                    self.leader.sql("SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())",
                                    (self.logical,))
            except Exception:  # noqa: BLE001  counted, the run goes on
                self.errors += 1

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                t = time.monotonic()
                wal, confirmed = self.leader.sql(LEADER_SQL, (self.logical,))[0]
                rows = dict(self.replica.sql(REPLICA_SQL))
                t_replica = time.monotonic()
            except Exception:  # noqa: BLE001
                self.errors += 1
                continue
            for name, value, at, into in (
                    (self.physical, wal, t, self.leader_samples),
                    (self.logical, confirmed, t, self.leader_samples),
                    (self.physical, rows.get(self.physical), t_replica, self.replica_samples),
                    (self.logical, rows.get(self.logical), t_replica, self.replica_samples)):
                if value is not None:
                    into.setdefault(name, []).append((at, int(value)))

    def trails(self, slot: str, skip: float = 0.0) -> list[float]:
        """Seconds each replica sample of `slot` trailed the leader (samples in
        the first `skip` s left out)."""
        ours = self.leader_samples.get(slot, [])
        if not ours:
            return []
        start = ours[0][0] + skip
        times = [t for t, _ in ours]
        out = []
        for t, pos in self.replica_samples.get(slot, []):
            if t < start:
                continue
            upto = bisect.bisect_right(times, t)
            behind = [i for i in range(upto) if ours[i][1] <= pos]
            if upto and ours[upto - 1][1] <= pos:
                out.append(0.0)
            elif behind:  # the leader was last seen at or before this position then
                out.append(t - times[behind[-1]])
            else:
                out.append(t - ours[0][0])
        return out

    def summary(self, skip: float = 0.0) -> dict[str, dict[str, float]]:
        """{slot: {p50, p95, max, samples}} of trails() in seconds."""
        out = {}
        for slot in (self.logical, self.physical):
            values = self.trails(slot, skip)
            out[slot] = {"p50": round(_quantile(values, 0.5), 2),
                         "p95": round(_quantile(values, 0.95), 2),
                         "max": round(max(values), 2) if values else 0.0,
                         "samples": len(values)}
        return out


def _json_key(cluster: "LocalCluster", key: str) -> Any:
    raw = cluster.dcs_key(key)
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def stale_slots(cluster: "LocalCluster") -> list[str]:
    """["node: slot (why)"] for every inactive slot nobody will use; [] when clean.
    Nodes whose postgres does not answer are skipped (nothing to judge there)."""
    from howdah.core.slots import is_ignored, parse_ignore, slot_name
    assert cluster.etcd is not None
    config = _json_key(cluster, "config")
    permanent = set((config.get("slots") or {}) if isinstance(config, dict) else {})
    rules, _ = parse_ignore(config.get("ignore_slots") if isinstance(config, dict) else None)
    status = _json_key(cluster, "status")
    retained = set(status.get("retain_slots") or []) if isinstance(status, dict) else set()
    prefix = f"/service/{cluster.scope}/members/"
    members = {slot_name(k[len(prefix):]) for k in cluster.etcd.keys(prefix)}
    out = []
    for node in cluster.nodes:
        try:
            rows = node.sql("SELECT slot_name, slot_type, database, plugin FROM"
                            " pg_replication_slots WHERE NOT active AND NOT temporary")
        except Exception:  # noqa: BLE001
            continue
        for name, kind, database, plugin in rows:
            if name in permanent or name in retained or is_ignored(
                    rules, name, kind, database, plugin):
                continue
            if name in members and name != slot_name(node.name):
                continue
            why = "its own member name" if name == slot_name(node.name) else \
                "not permanent, not a member's, not retained in /status"
            out.append(f"{node.name}: {name} ({why})")
    return sorted(out)


def wait_no_stale_slots(cluster: "LocalCluster", timeout: float = 120.0) -> None:
    """Wait until stale_slots() is empty (hygiene runs once a cycle); raises
    TimeoutError naming the slots left."""
    wait_until(lambda: not stale_slots(cluster), timeout, interval=1.0,
               what="no inactive slot that nobody will use on any node",
               details=lambda: "\n".join(stale_slots(cluster)))
