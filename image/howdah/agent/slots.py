"""Keeps this node's replication slots as core/slots.py says, every HA cycle.

On every node: creates the wanted physical slots, drops every other slot that
ignore_slots does not protect, recreates lost ones.  On the leader: creates
permanent logical slots and publishes positions and retained member slots in
/status.  On a replica: advances its slots to the leader's published
positions and copies permanent logical slots from the leader (their state
file, then a restart, as PostgreSQL loads slots at startup only).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

from howdah.core import slots as plan
from howdah.core.models import ClusterView
from howdah.core.settings import Settings
from howdah.pg import slots as pgslots
from howdah.pg.instance import Instance

log = logging.getLogger("howdah.slots")
COPY_RETRY = 300.0  # seconds before copying the same logical slot again


class SlotKeeper:
    def __init__(self, pg: Instance, wall: Callable[[], float] = time.time) -> None:
        self.pg = pg
        self.name = pg.name
        self.wall = wall
        self.existing: dict[str, dict[str, Any]] = {}
        self.want: dict[str, plan.SlotSpec] = {}
        self.retained: dict[str, float] = {}
        self.leading_since_status = False
        self.copied_at: dict[str, float] = {}
        self._reported: tuple[str, ...] = ()

    # ---- configuration ---------------------------------------------------
    def _config(self, settings: Settings) -> tuple[dict[str, plan.SlotSpec],
                                                   tuple[Mapping[str, str], ...]]:
        permanent, errors = plan.parse_permanent(settings.permanent_slots)
        rules, more = plan.parse_ignore(list(settings.ignore_slots))
        errors += more
        if tuple(errors) != self._reported:
            self._reported = tuple(errors)
            for e in errors:
                log.error("ignoring a bad slot setting: %s", e)
        return permanent, rules

    # ---- every cycle -----------------------------------------------------
    def maintain(self, view: ClusterView, settings: Settings, tags: Mapping[str, Any],
                 leading: bool, primary: bool, copy: bool = True) -> list[str]:
        """One pass; returns the logical slots a replica should copy from the leader.
        copy=False (failsafe mode, DCS unreachable): slots are only advanced, a
        logical one ahead of the leader's is kept, since nothing may be copied."""
        if not settings.use_slots or settings.pause:
            return []
        permanent, rules = self._config(settings)
        want = plan.wanted(view, self.name, tags, leading, permanent, settings.member_slots_ttl,
                           settings.standby_cluster is not None)
        db = self.pg.db
        existing = pgslots.read(db)
        gone = {name for name, why in plan.to_drop(existing, want, rules) if self._drop(name, why)}
        clean_xmin = view.leader is not None and (primary or view.leader.name != self.name)
        to_copy: list[str] = []
        for name, spec in want.items():
            row = existing.get(name)
            if name in gone:
                row = None
            if spec.type == "physical":
                self._physical(name, spec, row, clean_xmin)
            elif primary:
                if row is None:
                    self._try(f"create logical slot {name}", pgslots.create_logical,
                              db.params, name, str(spec.database), str(spec.plugin))
            elif row is None:
                if spec.lsn:  # copy only what the leader has published
                    to_copy.append(name)
            elif spec.lsn and row.get("confirmed_flush_lsn") is not None:
                if row["confirmed_flush_lsn"] > spec.lsn and copy:
                    # ahead of the leader's (a former primary, or rewound): copy it again
                    self._drop(name, "it is ahead of the leader's; copying it again")
                    to_copy.append(name)
                elif row["confirmed_flush_lsn"] < spec.lsn and not row.get("active"):
                    self._advance_logical(view, name, spec, row)
        self.want = want
        self.existing = pgslots.read(db)
        return to_copy if copy else []

    def _advance_logical(self, view: ClusterView, name: str, spec: plan.SlotSpec,
                         row: Mapping[str, Any]) -> None:
        db = self.pg.db
        try:
            pgslots.advance(db.params, db, name, int(spec.lsn or 0), spec.database)
            return
        except Exception as exc:  # noqa: BLE001
            message = str(exc).strip().splitlines()[0]
        leader = view.leader_member
        if "has already been removed" not in message or leader is None or not leader.conn_url:
            log.warning("could not advance logical slot %s: %s", name, message)
            return
        # the copy starts before this replica's own WAL: fetch the leader's segments
        remote = self.pg._remote_db(leader.conn_url)
        try:
            n = pgslots.fetch_missing_wal(remote, db, self.pg.paths.data_dir,
                                          int(row.get("restart_lsn") or 0))
            log.info("logical slot %s needs WAL this replica never had: copied %d "
                     "segment(s) from %s", name, n, leader.name)
        except Exception as exc:  # noqa: BLE001  the next cycle tries again
            log.warning("could not copy WAL for logical slot %s from %s: %s", name,
                        leader.name, exc)
        finally:
            remote.close()

    def _drop(self, name: str, why: str) -> bool:
        try:
            if pgslots.drop(self.pg.db, name):
                log.info("dropped replication slot %s: %s", name, why)
                return True
            log.warning("cannot drop replication slot %s (%s): it is in use", name, why)
        except Exception as exc:  # noqa: BLE001  the next cycle tries again
            log.warning("could not drop replication slot %s: %s", name, exc)
        return False

    def _try(self, what: str, fn: Callable[..., Any], *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except Exception as exc:  # noqa: BLE001  the next cycle tries again
            log.warning("could not %s: %s", what, str(exc).strip().splitlines()[0])
            return False

    def _physical(self, name: str, spec: plan.SlotSpec, row: Mapping[str, Any] | None,
                  clean_xmin: bool) -> None:
        db = self.pg.db
        if row is not None and spec.expected_active is False and not row.get("active") \
                and row.get("xmin") and clean_xmin:
            # nobody streams from it here, so its xmin (hot_standby_feedback of a
            # former follower) never moves and would hold back vacuum everywhere
            if self._drop(name, f"an unused slot holding xmin {row['xmin']}"):
                row = None
        if row is None:
            if self._try(f"create physical slot {name}", pgslots.create_physical, db, name):
                log.info("created replication slot %s", name)
            return
        self._advance_physical(name, spec, row)

    def _advance_physical(self, name: str, spec: plan.SlotSpec, row: Mapping[str, Any]) -> None:
        db = self.pg.db
        restart = row.get("restart_lsn")
        if spec.expected_active is not True and not row.get("active") and restart and \
                not row.get("xmin") and spec.lsn and spec.lsn > restart:
            self._try(f"advance slot {name}", pgslots.advance, db.params, db, name, spec.lsn)

    def advance(self, view: ClusterView, settings: Settings, tags: Mapping[str, Any]) -> None:
        """Between a replica's cycles: only advances its existing slots to the
        leader's /status positions in `view` (never creates, drops or copies:
        that is the cycle's pass), so they trail the leader's by less than a loop."""
        if not settings.use_slots or settings.pause:
            return
        permanent, _ = plan.parse_permanent(settings.permanent_slots)
        want = plan.wanted(view, self.name, tags, False, permanent, settings.member_slots_ttl,
                           settings.standby_cluster is not None)
        existing = pgslots.read(self.pg.db)
        for name, spec in want.items():
            row = existing.get(name)
            if row is None or not spec.lsn:
                continue
            if spec.type == "physical":
                self._advance_physical(name, spec, row)
            elif row.get("confirmed_flush_lsn") is not None and \
                    row["confirmed_flush_lsn"] < spec.lsn and not row.get("active"):
                self._advance_logical(view, name, spec, row)

    # ---- the leader's /status ------------------------------------------------
    def status(self, view: ClusterView, settings: Settings, wal_position: int
               ) -> tuple[dict[str, int], list[str] | None]:
        """(slots, retain_slots) for /status."""
        if not settings.use_slots:
            return {}, None
        permanent, _ = plan.parse_permanent(settings.permanent_slots)
        if not self.leading_since_status:
            # a new leader starts from the list its predecessor wrote
            now = self.wall()
            self.retained = {n: now for n in view.retain_slots}
            self.leading_since_status = True
        published = plan.publishable(self.existing, self.want, self.name, wal_position,
                                     settings.member_slots_ttl)
        self.retained = plan.retain(self.retained, view, self.name, published, permanent,
                                    settings.member_slots_ttl, self.wall())
        return published, sorted(self.retained) or None

    def positions(self, settings: Settings, wal_position: int) -> dict[str, int]:
        """The leader's slot positions now, for its POST /failsafe body: what it
        publishes in /status, read afresh (a consumer moves a logical slot on)."""
        if not settings.use_slots:
            return {}
        self.existing = pgslots.read(self.pg.db)
        return plan.publishable(self.existing, self.want, self.name, wal_position,
                                settings.member_slots_ttl)

    def not_leading(self) -> None:
        self.leading_since_status = False

    # ---- copying logical slots to a replica ----------------------------------
    def due_copies(self, names: list[str]) -> list[str]:
        now = self.wall()
        return [n for n in names if now - self.copied_at.get(n, -COPY_RETRY) >= COPY_RETRY]

    def fetch_from_leader(self, leader_url: str, names: list[str]) -> dict[str, bytes]:
        """State files of the leader's logical slots whose plugin/database match ours."""
        db = self.pg._remote_db(leader_url)
        try:
            rows = pgslots.fetch_state_files(db, names)
        finally:
            db.close()
        now = self.wall()
        out: dict[str, bytes] = {}
        for name in names:
            spec, row = self.want.get(name), rows.get(name)
            self.copied_at[name] = now
            if spec is None or row is None:
                continue
            if (row["database"], row["plugin"]) != (spec.database, spec.plugin):
                log.warning("not copying logical slot %s: the leader's is %s/%s, configured %s/%s",
                            name, row["database"], row["plugin"], spec.database, spec.plugin)
                continue
            out[name] = row["data"]
        return out
