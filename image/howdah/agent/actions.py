"""Executors for the actions of the transition table, named for the verb.

Each returns True when the rest of the row may go on.  Long work is handed
to the TaskRunner so the HA loop keeps renewing the lease meanwhile.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Mapping

from howdah.agent.bootstrap import Bootstrapper
from howdah.agent.callbacks import Callbacks
from howdah.agent.control import Ticket
from howdah.agent.slots import SlotKeeper
from howdah.agent.state import Memory
from howdah.agent.tasks import TaskRunner
from howdah.core.models import ClusterView, Role, TaskKind, truthy
from howdah.core.settings import Settings
from howdah.core.quorum import Key, Ssn
from howdah.core.quorum import plan as quorum_plan
from howdah.core.sync import candidates as sync_candidates
from howdah.core.sync import plan as sync_plan
from howdah.core.sync import ssn_value
from howdah.core.transitions import Decision, Reason
from howdah.dcs.base import Dcs
from howdah.pg import clone, conf
from howdah.pg import slots as pgslots
from howdah.pg.instance import Instance
from howdah.pg.query import LocalDb, parse_ssn, parse_ssn_count

log = logging.getLogger(__name__)


class Executor:
    def __init__(self, dcs: Dcs, pg: Instance, runner: TaskRunner, mem: Memory,
                 bootstrapper: Bootstrapper, clock: Callable[[], float],
                 wake: threading.Event, callbacks: Callbacks) -> None:
        self.wake = wake
        self.callbacks = callbacks
        self.announced: str | None = None
        self.ticket: Ticket | None = None
        self.dcs = dcs
        self.pg = pg
        self.runner = runner
        self.mem = mem
        self.bootstrapper = bootstrapper
        self.clock = clock
        self.settings = Settings()
        # WAL position once synchronous_standby_names last changed: a standby
        # that flushed past it has every commit acknowledged so far
        self._ssn_floor: int | None = None
        self.on_renew: Callable[[], None] = lambda: None  # publishes the fence's deadline
        self.on_acquired: Callable[[], bool] = lambda: True  # arms a watchdog; False: may not lead
        # republishes the REST snapshot: called when this node stops being the primary,
        # before postgres stops taking writes, so /primary never answers 200 for a node
        # that is stepping down
        self.on_step_down: Callable[[], None] = lambda: None
        self.slots: SlotKeeper | None = None  # set by the agent
        self.tags: dict[str, Any] = {}
        self.api_url = ""  # set by the agent: our /patroni URL, for /failsafe

    def run(self, decision: Decision, settings: Settings) -> None:
        self.settings = settings
        for action in decision.actions:
            fn = getattr(self, action.value)
            if not fn(decision):
                log.info("%s did not succeed; skipping the rest of %s", action.value,
                         decision.goal.value)
                return

    # ---- DCS ---------------------------------------------------------------
    def renew_lock(self, d: Decision) -> bool:
        sent = self.clock()
        if self.dcs.renew_leader(self.settings.ttl):
            self.mem.last_renew = sent
            self.on_renew()
            return True
        log.warning("could not renew the leader lock: another member holds it")
        return False

    def acquire_lock(self, d: Decision) -> bool:
        sent = self.clock()
        if self.dcs.acquire_leader(self.settings.ttl):
            self.mem.last_renew = sent
            self.on_renew()
            log.info("acquired the leader lock")
            if not self.on_acquired():
                log.error("giving the leader lock back: this node may not lead unguarded")
                self.release_lock(d)
                return False
            return True
        log.info("another member acquired the leader lock first")
        return False

    def lease_left(self, floor: float = 1.0) -> float:
        """Seconds to the point where this leader must have renewed again
        (loop_wait + retry_timeout after the last renewal), at least floor:
        what a blocking call on the HA path may take."""
        if self.mem.last_renew is None:
            return floor
        return max(floor, self.mem.last_renew + self.settings.demote_after - self.clock())

    def stop_postgres(self, d: Decision) -> bool:
        """Stop whatever postmaster runs (one still in crash recovery answers
        no query, yet opens read-write when done); the row goes on only once
        none is left."""
        wait = max(5.0, float(self.settings.retry_timeout))  # then SIGKILL: a hung one ignores SIGQUIT
        if self.pg.stop("immediate", timeout=wait, abort_after=wait):
            return True
        log.error("postgres did not stop: keeping the leader lock until it does")
        return False

    def release_lock(self, d: Decision) -> bool:
        self.mem.last_renew = None
        self.dcs.release_leader()
        return True

    def stop_for_handover(self, d: Decision) -> bool:
        log.info("switchover to %s: stopping postgres", d.target)
        self.mem.role = Role.DEMOTED
        self.mem.state = "stopping"
        self.on_step_down()
        snap = self.pg.db.snapshot()
        written = snap.wal_position if snap is not None and not snap.in_recovery else None
        # A fast shutdown lets the walsenders ship every last byte to the
        # replicas (and wait for their flush) before postgres exits.
        limit = self.settings.stop_timeout  # primary_stop_timeout, synchronous mode only
        ok = self.pg.stop("fast", timeout=limit or max(10.0, float(self.settings.retry_timeout)),
                          abort_after=limit or 30.0)
        self.mem.state = "stopped"
        self.announce(Role.DEMOTED)
        if not ok:
            return False
        # A clean stop leaves the shutdown checkpoint as the last record; after
        # an escalation to immediate, what was written before the stop is the floor.
        checkpoint = self.pg.shutdown_checkpoint()
        last = checkpoint + 1 if checkpoint is not None else written
        return self.target_caught_up(str(d.target), last)

    def target_caught_up(self, target: str, last: int | None) -> bool:
        """The target has received WAL up to `last`, or is within
        maximum_lag_on_failover of it; otherwise the switchover is called off
        (the failover key cleared) and the next cycle starts postgres again as
        the primary under the lock we still hold."""
        member = next((m for m in self.mem.view.members if m.name == target), None)
        if last is None or member is None or not member.conn_url:
            return True  # nothing to compare with
        deadline = self.clock() + max(5.0, float(self.settings.retry_timeout))
        received = 0
        while True:
            received = self.pg.remote_received(member.conn_url) or 0
            if received >= last:
                log.info("switchover: %s received all of this leader's WAL", target)
                return True
            if self.clock() >= deadline:
                break
            time.sleep(0.1)
        lag = max(0, last - received)
        if lag <= self.settings.maximum_lag_on_failover:
            log.warning("switchover: %s is %d bytes behind the shutdown checkpoint, within "
                        "maximum_lag_on_failover", target, lag)
            return True
        message = (f"switchover cancelled: {target} is {lag} bytes behind this leader's last "
                   f"WAL (maximum_lag_on_failover is {self.settings.maximum_lag_on_failover})")
        log.warning("%s; starting postgres again as the primary", message)
        self.dcs.clear_failover()
        return False

    def hand_lock(self, d: Decision) -> bool:
        if d.target and self.dcs.hand_leader(d.target, self.settings.ttl):
            self.mem.last_renew = None
            log.info("handed the leader lock to %s", d.target)
            return True
        log.warning("could not hand the lock to %s", d.target)
        return False

    def clear_failover(self, d: Decision) -> bool:
        self.dcs.clear_failover()
        return True

    # ---- requests from the REST API ----------------------------------------
    def _finish(self, ok: bool, message: str) -> None:
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            ticket.finish(ok, message)

    def _ticket_task(self, kind: TaskKind, fn: Callable[[], bool], state: str,
                     done: str, failed: str) -> bool:
        ticket, self.ticket = self.ticket, None

        def work() -> bool:
            ok = False
            try:
                ok = fn()
            finally:
                if ticket is not None:
                    ticket.finish(ok, done if ok else failed)
            return ok
        if not self._start_task(kind, work, state):
            if ticket is not None:
                ticket.finish(False, "another operation is in progress")
            return False
        return True

    def restart(self, d: Decision) -> bool:
        s = self.settings
        primary = self.mem.role == Role.PRIMARY
        url = None if primary else self._member_url(self.mem.view, d.target)

        def work() -> bool:
            self.pg.stop("fast", timeout=max(60.0, float(s.retry_timeout)))
            ok = self.pg.start(s, url, not primary, s.primary_start_timeout or 300)
            if ok:
                self.callbacks.fire("on_restart", self.mem.role.value)
            return ok
        return self._ticket_task(TaskKind.RESTART, work, "restarting",
                                 "restarted successfully", "restart failed")

    def apply_config(self, settings: Settings) -> None:
        """Parameters or pg_hba changed in the DCS config: rewrite and reload."""
        self.settings = settings
        view = self.mem.view
        primary = self.mem.role == Role.PRIMARY
        url = None if primary else self._member_url(view, view.leader.name if view.leader else None)
        if self.mem.role == Role.STANDBY_LEADER:
            self.pg.configure(self.settings, self.remote_url(), standby=True,
                              remote=self.settings.standby_cluster or {})
        else:
            self.pg.configure(self.settings, url, standby=not primary)
        if self.pg.reload():
            log.info("applied the changed postgresql configuration (reload)")
            self.callbacks.fire("on_reload", self.mem.role.value)

    def reload(self, d: Decision) -> bool:
        primary = self.mem.role == Role.PRIMARY
        url = None if primary else self._member_url(self.mem.view, d.target or (
            self.mem.view.leader.name if self.mem.view.leader else None))
        if url or primary:
            self.pg.configure(self.settings, url, standby=not primary)
        ok = self.pg.reload()
        if ok:
            self.callbacks.fire("on_reload", self.mem.role.value)
        self._finish(ok, "reloaded configuration" if ok else "postgres is not running")
        return True

    def reinitialize_now(self, d: Decision) -> bool:
        url = self._member_url(self.mem.view, d.target)
        if url is None:
            self._finish(False, "no leader to clone from")
            return False
        create_slot = self._needs_slot()

        def work() -> bool:
            self.pg.stop("fast", timeout=60)
            log.warning("reinitialize: removing the data directory to clone %s again", d.target)
            clone.clean_data_dir(self.pg.paths.data_dir)
            return self.pg.create_replica(url, create_slot)
        self.mem.role = Role.UNINITIALIZED
        return self._ticket_task(TaskKind.CREATE_REPLICA, work, "creating replica",
                                 "reinitialized successfully", "reinitialize failed")

    def reject_request(self, d: Decision) -> bool:
        self._finish(False, d.detail)
        return True

    def take_initialize(self, d: Decision) -> bool:
        if self.dcs.take_initialize():
            log.info("won the initialize race: bootstrapping the cluster")
            return True
        log.info("initialize already taken: giving the lock back")
        self.release_lock(d)
        return False

    def clear_initialize(self, d: Decision) -> bool:
        if self.mem.view.leader and self.mem.view.leader.name == self.pg.name:
            self.release_lock(d)
        return self.dcs.clear_initialize(self.mem.view.initialize_index)

    def write_status(self, d: Decision) -> bool:
        pg = self.pg.last_snapshot
        if pg is not None and not pg.in_recovery:
            position = pg.wal_position
            slots: dict[str, int] = {}
            retain = None
            if self.slots is not None:
                try:
                    slots, retain = self.slots.status(self.mem.view, self.settings, position)
                except Exception as exc:  # status is best effort
                    log.warning("could not read replication slots for /status: %s", exc)
            if position:
                self.dcs.write_status(position, slots, retain)
        self._write_failsafe()
        return True

    def _write_failsafe(self) -> None:
        """failsafe_mode: the leader keeps /failsafe = {member: api_url} (itself
        included) while it can reach the DCS; written only when it changes."""
        if not self.settings.failsafe_mode:
            return
        members = {m.name: m.api_url for m in self.mem.view.members if m.api_url}
        if self.pg.name not in members and self.api_url:
            members[self.pg.name] = self.api_url
        if members and members != dict(self.mem.view.failsafe or {}):
            self.dcs.write_failsafe(members)
            # what we wrote is what a DCS outage starting now must go by (as Patroni)
            self.mem.view = replace(self.mem.view, failsafe=members)

    def sync_slots(self, d: Decision) -> bool:
        """The leader's slots (agent/slots.py); a failure never stops the row."""
        if self.slots is None:
            return True
        snap = self.pg.last_snapshot
        try:
            self.slots.maintain(self.mem.view, self.settings, self.tags, leading=True,
                                primary=snap is not None and not snap.in_recovery)
        except Exception as exc:
            log.warning("could not sync replication slots: %s", exc)
        return True

    def copy_logical_slots(self, files: Mapping[str, bytes], leader_url: str) -> bool:
        """Install the leader's logical slot state files: postgres reads slots at
        startup only, so stop it, write them, start it again as a replica."""
        s = self.settings

        def work() -> bool:
            log.info("copying logical slots %s from the leader: restarting postgres",
                     ", ".join(sorted(files)))
            if not self.pg.stop("fast", timeout=max(60.0, float(s.retry_timeout))):
                return False
            try:
                pgslots.install_state_files(self.pg.paths.data_dir, files)
            except OSError as exc:
                log.error("could not write the copied slot files: %s", exc)
            return self.pg.start(s, leader_url, True, 3600)
        return self._start_task(TaskKind.RESTART, work, "restarting")

    def sync_replication(self, d: Decision) -> bool:
        """Safe steps towards the wanted synchronous standbys (core/sync.py,
        core/quorum.py).  Steps go on within the cycle while each is confirmed,
        so a dead synchronous standby is replaced in one cycle."""
        s, view, me = self.settings, self.mem.view, self.pg.name
        try:
            if not s.synchronous_mode:
                if view.sync_leader is not None:
                    self.dcs.delete_sync()
                if self.pg.db.sync_standby_names():
                    self.pg.db.set_sync_standby_names("")
                return True
            if view.sync_leader != me:
                # a new leader starts from an empty key of its own
                self.dcs.write_sync(me, (), view.sync_index)
                return True
            key, quorum, index = tuple(view.sync_standbys), view.sync_quorum, view.sync_index
            snap = self.pg.last_snapshot
            deadline = self.clock() + 2.0
            waiting = False
            for _ in range(16):
                if snap is None or snap.in_recovery:
                    return True
                done = self._sync_step(snap, key, quorum, index)
                if done is None:
                    # after a change of synchronous_standby_names, give the
                    # standbys a moment to confirm before the next cycle
                    if not waiting or self.clock() >= deadline:
                        return True
                    time.sleep(0.2)
                else:
                    key, quorum, index, changed_ssn = done
                    waiting = waiting or changed_ssn
                snap = self.pg.db.snapshot()
        except Exception as exc:  # the next cycle tries again
            log.warning("could not manage synchronous replication: %s", exc)
        return True

    def _sync_step(self, snap: Any, key: tuple[str, ...], quorum: int, index: int | None
                   ) -> tuple[tuple[str, ...], int, int | None, bool] | None:
        """Plan and apply one step; returns the new (key, quorum, key index,
        waiting for a standby to catch up), or None when nothing is left to do."""
        s, me, view = self.settings, self.pg.name, self.mem.view
        tags = {m.name: dict(m.tags) for m in view.members}
        if self._ssn_floor is None:
            self._ssn_floor = self._current_lsn()
        caught_up = {n for n, lsn in snap.flushed.items() if lsn >= self._ssn_floor}
        raw = str(self.pg.db.execute("SHOW synchronous_standby_names")[0][0] or "")
        names = parse_ssn(raw)
        active = sync_candidates(snap.replication, tags, snap.flushed,
                                 s.maximum_lag_on_syncnode)
        if s.synchronous_quorum:
            k, star = parse_ssn_count(raw)
            step = quorum_plan(Key(quorum, frozenset(key)), Ssn(k, frozenset(names), star),
                               active, caught_up, s.synchronous_node_count,
                               s.synchronous_mode_strict)
            if step is None:
                return None
            log.info("quorum commit: %s", step.detail)
            if step.key is not None:
                voters = tuple(sorted(step.key.voters))
                if not self.dcs.write_sync(me, voters, index, step.key.quorum):
                    return None  # changed under us: the next cycle plans again
                return voters, step.key.quorum, self._sync_index(), False
            assert step.ssn is not None
            value = "*" if step.ssn.star else ssn_value(
                sorted(step.ssn.names), step.ssn.k, s.synchronous_mode_strict, quorum=True)
            self._set_ssn(value)
            return key, quorum, index, True
        if raw.strip().upper().startswith("ANY") and key:
            # from quorum mode: 'ANY k' lets any listed standby acknowledge; with
            # FIRST semantics only the key's standbys may promote: empty it first
            if not self.dcs.write_sync(me, (), index):
                return None
            return (), 0, self._sync_index(), False
        sstep = sync_plan(key, names, snap.replication, tags, s.synchronous_node_count,
                          caught_up, active)
        if sstep is None:
            return None
        log.info("synchronous replication: %s", sstep.detail)
        if sstep.key is not None:
            if not self.dcs.write_sync(me, sstep.key, index):
                return None
            return sstep.key, 0, self._sync_index(), False
        assert sstep.ssn is not None
        self._set_ssn(ssn_value(sstep.ssn, s.synchronous_node_count, s.synchronous_mode_strict))
        return key, quorum, index, True

    def _set_ssn(self, value: str) -> None:
        self._ssn_floor = None
        self.pg.db.set_sync_standby_names(value)
        self._ssn_floor = self._current_lsn()

    def _sync_index(self) -> int | None:
        return self.dcs.get_cluster().sync_index

    def _current_lsn(self) -> int:
        return int(self.pg.db.execute("SELECT pg_current_wal_lsn() - '0/0'")[0][0])

    # ---- postgres ----------------------------------------------------------
    def _member_url(self, view: ClusterView, name: str | None) -> str | None:
        m = view.member(name) if name else None
        return m.conn_url if m and m.conn_url else None

    def _start_task(self, kind: TaskKind, fn: Callable[[], bool], state: str) -> bool:
        if self.runner.start(kind, fn):
            self.mem.state = state
            return True  # tasks end their rows; decide() sees the task from now on
        return False

    def bootstrap(self, d: Decision) -> bool:
        self.mem.role = Role.UNINITIALIZED
        return self._start_task(TaskKind.BOOTSTRAP, self.bootstrapper.run,
                                "initializing new cluster")

    def started(self, role: Role) -> None:
        """Tell the callbacks postgres is up: a node coming back from a demotion
        changed role; any other start is an on_start."""
        if self.announced in (Role.PRIMARY.value, Role.DEMOTED.value) and role == Role.REPLICA:
            self.announce(role)
        else:
            self.callbacks.fire("on_start", role.value)

    def announce(self, role: Role) -> None:
        self.announced = role.value
        self.callbacks.fire("on_role_change", role.value)

    def _start_then(self, role: Role, start: Callable[[], bool]) -> Callable[[], bool]:
        def work() -> bool:
            ok = start()
            if ok:
                self.started(role)
            return ok
        return work

    def start_primary(self, d: Decision) -> bool:
        s = self.settings
        self.mem.role = Role.PRIMARY
        return self._start_task(TaskKind.START, self._start_then(
            Role.PRIMARY, lambda: self.pg.start(s, None, False, s.primary_start_timeout or 60)),
            "starting")

    def start_replica(self, d: Decision) -> bool:
        s, url = self.settings, self._member_url(self.mem.view, d.target)
        self.mem.role = Role.REPLICA
        return self._start_task(TaskKind.START, self._start_then(
            Role.REPLICA, lambda: self.pg.start(s, url, True, 3600)), "starting")

    def follow(self, d: Decision) -> bool:
        if d.target is None:  # nostream: replay the archive only, no primary_conninfo
            log.info("nostream: replaying the WAL archive only")
            self.pg.configure(self.settings, None, standby=True)
            return self.pg.reload()
        url = self._member_url(self.mem.view, d.target)
        if url:
            log.info("following %s at %s", d.target, url)
            self.pg.follow(self.settings, url)
        return True

    def remote_url(self) -> str | None:
        std = self.settings.standby_cluster or {}
        if not std.get("host"):
            return None
        return f"postgres://{std['host']}:{std.get('port') or 5432}/postgres"

    def follow_remote(self, d: Decision) -> bool:
        """Standby leader: keep replicating from the remote primary (or archive)."""
        std = self.settings.standby_cluster or {}
        url = self.remote_url()
        want = conf.split_conn_url(url) if url else None
        have = self.pg.observe_upstream()
        if want is not None and have != f"{want[0]}:{want[1]}":
            log.info("standby leader: following the remote primary %s:%s", *want)
            self.pg.follow_remote(self.settings, url, std)
        self.mem.role = Role.STANDBY_LEADER
        return True

    def promote(self, d: Decision) -> bool:
        if self.settings.standby_cluster is not None:
            # in a standby cluster the winner becomes standby leader: it goes
            # on replaying, from the remote primary instead of the old leader
            self.follow_remote(d)
            self.announce(Role.STANDBY_LEADER)
            return True
        now = self.pg.observe()
        if now.running and not now.in_recovery:
            # a primary that kept running without the lock (failsafe mode through a DCS
            # outage) took the key back: nothing to promote, no new timeline, no history
            log.info("took the leader lock back: postgres already runs as the primary")
            self.mem.role = Role.PRIMARY
            self.mem.state = "running"
            return True
        self._ssn_floor = None
        if self.settings.synchronous_mode and not self._sync_before_promote():
            return False
        self.mem.state = "promoting"
        ok = self.pg.promote(self.lease_left())
        if ok:
            self.mem.role = Role.PRIMARY
            self.mem.state = "running"
            self.announce(Role.PRIMARY)
            # pg_rewind reads the source's timeline from its control file, which
            # only changes at the first checkpoint after promotion: make it now.
            threading.Thread(target=self._checkpoint, name="checkpoint", daemon=True).start()
            self._record_history()
            self.pg.last_snapshot = self.pg.db.snapshot()
            self.write_status(d)
        return ok

    def _sync_before_promote(self) -> bool:
        """Synchronous mode: before the first commit this node could acknowledge,
        the sync key names it as leader with no synchronous standby (compare-
        and-swap on the key we read: nobody else may then promote), and its
        synchronous_standby_names, reloaded, is no weaker than that: nobody,
        or '*' in strict mode.  Either failing: no promotion this cycle."""
        s, view, me = self.settings, self.mem.view, self.pg.name
        if not self.dcs.write_sync(me, (), view.sync_index):
            log.warning("not promoting: the sync key changed under us; retrying next cycle")
            return False
        try:
            self.pg.db.set_sync_standby_names(ssn_value((), 1, s.synchronous_mode_strict))
        except Exception as exc:
            log.warning("not promoting: could not set synchronous_standby_names: %s", exc)
            return False
        return True

    def _checkpoint(self) -> None:
        try:
            db = LocalDb(self.pg.db.params)  # its own connection: we are on another thread
            try:
                db.checkpoint()
            finally:
                db.close()
        except Exception as exc:
            log.warning("checkpoint after promotion failed: %s", exc)

    def _record_history(self) -> None:
        snap = self.pg.db.snapshot()
        if snap is None:
            return
        history = [list(h) for h in self.mem.view.history]
        ts = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        history.append([snap.timeline - 1, snap.wal_position, "no recovery target specified",
                        ts, self.pg.name])
        self.dcs.write_history(history)

    def demote(self, d: Decision) -> bool:
        self.mem.role = Role.DEMOTED
        self.mem.last_renew = None
        self.mem.state = "stopping"
        self.on_step_down()
        margin = max(1.0, self.settings.retry_timeout / 2)
        limit = self.settings.stop_timeout  # primary_stop_timeout, synchronous mode only
        if limit is not None:
            margin = min(margin, limit)
        log.warning("demoting: stopping postgres (fast, %.0fs before immediate)", margin)
        self.pg.stop("fast", timeout=margin, abort_after=limit or 30.0)
        self.mem.state = "stopped"
        self.announce(Role.DEMOTED)
        return True

    def rewind(self, d: Decision) -> bool:
        url = self._member_url(self.mem.view, d.target)
        if url is None:
            return False

        settings = self.settings

        def work() -> bool:
            if d.reason == Reason.DIVERGED:  # a running replica: pg_rewind needs a clean stop
                log.warning("stopping postgres to rewind it against %s", d.target)
                self.pg.stop("fast", timeout=60)
            ok = self.pg.rewind(url)
            self.mem.rewind_failed = not ok
            # "no rewind required" leaves the control file as it was, so start
            # as a replica right here rather than deciding to rewind again
            ok = ok and self.pg.start(settings, url, True, 3600)
            if ok:
                self.started(Role.REPLICA)
            return ok
        self.mem.role = Role.REPLICA
        return self._start_task(TaskKind.REWIND, work, "rewinding")

    def create_replica(self, d: Decision) -> bool:
        url = self._member_url(self.mem.view, d.target)  # None: a no_master method restores
        s = self.settings
        create_slot = self._needs_slot()
        self.mem.role = Role.UNINITIALIZED
        return self._start_task(
            TaskKind.CREATE_REPLICA,
            lambda: self.pg.create_replica(url, create_slot, s.standby_cluster),
            "creating replica")

    def _needs_slot(self) -> bool:
        """Our slot is not yet among the leader's (its status key lists them)."""
        if truthy(self.tags.get("nostream")):
            return False  # nostream: no slot anywhere (as Patroni)
        return self.settings.use_slots and conf.slot_name(self.pg.name) not in self.mem.view.slots

    def reinitialize(self, d: Decision) -> bool:
        url = self._member_url(self.mem.view, d.target)
        if url is None:
            return False
        create_slot = self._needs_slot()

        def work() -> bool:
            log.warning("removing the data directory to clone again from %s", d.target)
            clone.clean_data_dir(self.pg.paths.data_dir)
            ok = self.pg.create_replica(url, create_slot)
            self.mem.rewind_failed = False
            return ok
        return self._start_task(TaskKind.CREATE_REPLICA, work, "creating replica")


def dcs_settings_source(view: ClusterView, bootstrap_dcs: Mapping[str, Any]) -> Mapping[str, Any]:
    return view.config if view.config else bootstrap_dcs
