"""The HA loop: observe -> decide -> act, one log line per cycle."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from howdah.agent.actions import Executor
from howdah.agent.bootstrap import Bootstrapper
from howdah.agent.callbacks import Callbacks
from howdah.agent.control import Control, Request
from howdah.agent.failsafe import Failsafe, auth_headers, confirm
from howdah.agent.fence import Fence, LeaseFile
from howdah.agent.peers import fetch_peers, pool_from_config
from howdah.agent.slots import SlotKeeper
from howdah.agent.state import DynamicCache, Memory, member_json, node_status, to_local
from howdah.agent.tasks import TaskRunner
from howdah.agent.watchdog import Watchdog, WatchdogConfig, WatchdogConfigError
from howdah.core import failsafe as failsafe_plan
from howdah.core.status import NodeStatus
from howdah.core.timeline import cluster_timeline
from howdah.config.load import AgentConfig, ConfigError, load
from howdah.core.decide import decide
from howdah.core.models import ClusterView, DataState, PeerStatus, Role, TaskKind, public_tags, \
    tag_conflicts
from howdah.core.settings import Settings, SettingsError, build_settings
from howdah.core.transitions import Action, Decision, Goal
from howdah.dcs.base import DcsError
from howdah.dcs import open_dcs
from howdah.pg import diverge, query
from howdah.pg.instance import Instance

log = logging.getLogger("howdah.ha")
EAGER_GOALS = {Goal.WAIT_BOOTSTRAP, Goal.WAIT_LEADER, Goal.STAY_BEHIND}
RELOADED_PG = ("parameters", "pg_hba")  # the local postgresql keys a reload takes
SLOT_GOALS = {Goal.REPLICATE, Goal.FOLLOW}  # a replica keeps its slots in these
SLOT_STEPS = 3  # slot positions are published / applied this many times a loop


class Agent:
    def __init__(self, cfg: AgentConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.tags = dict(cfg.tags)
        self.clock = clock
        self.mem = Memory()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.pg = Instance(cfg.name, cfg.postgresql, cfg.scope)
        self.local_pg = dict(cfg.postgresql)  # parameters and pg_hba: read again on reload
        self.dynamic_cache = DynamicCache(self.pg.paths.data_dir)
        self.dynamic_cache.load()
        self.settings = self._settings(ClusterView())
        for note in self.settings.notes:
            log.warning("bootstrap.dcs: %s", note)
        timeout = self._request_timeout(self.settings)
        self.dcs = open_dcs(cfg, cfg.name, timeout)
        self.watch_dcs = open_dcs(cfg, cfg.name, timeout)
        self.runner = TaskRunner(clock, self.wake)
        self.callbacks = Callbacks(cfg.postgresql.get("callbacks") or {}, cfg.scope)
        self.bootstrapper = Bootstrapper(self.dcs, self.pg, cfg.scope, cfg.bootstrap,
                                         self._bootstrapped,
                                         lambda: self.callbacks.fire("on_start", "primary"))
        self.executor = Executor(self.dcs, self.pg, self.runner, self.mem, self.bootstrapper,
                                 clock, self.wake, self.callbacks)
        self.slots = SlotKeeper(self.pg)
        self.executor.slots = self.slots
        self.executor.tags = self.tags
        self.status = NodeStatus(name=cfg.name, scope=cfg.scope, state="starting",
                                 role="uninitialized", ttl=self.settings.ttl,
                                 tags=public_tags(cfg.tags))
        self.config_changed = False  # postgresql parameters/pg_hba changed in the DCS
        self.exit_code = 0  # the process's exit status once run() returns
        self.control = Control(
            cfg.name, cfg.scope, open_dcs(cfg, cfg.name, timeout),
            lambda: self.mem.view, lambda: self.settings, lambda: self.status, self.wake)
        lease_path = cfg.postgresql.get("lease_file") or \
            self.pg.paths.data_dir.parent / f".howdah-{cfg.name}.lease"
        self.lease = LeaseFile(Path(str(lease_path)))
        self.fence = Fence(self.lease.path, self.pg.paths.data_dir)
        self.executor.on_renew = self.publish_lease
        try:
            self.watchdog = Watchdog(WatchdogConfig.parse(cfg.raw.get("watchdog")))
        except WatchdogConfigError as exc:
            raise ConfigError(exc.field, exc.message) from None
        self.executor.on_acquired = self._arm_watchdog
        self.executor.on_step_down = self.publish
        self._dcs_timeout = timeout
        self.api_url = self._api_url()
        self.callbacks.api_base = self.api_url.removesuffix("/patroni")  # role hooks re-check leadership
        self.executor.api_url = self.api_url
        self.conn_url = self._conn_url()
        ctl = cfg.raw.get("ctl")
        try:  # members call members as Patroni does: ctl.certfile, peers' chain checked
            self.peer_pool = pool_from_config(cfg.restapi, ctl if isinstance(ctl, dict) else {})
        except ValueError as exc:
            raise ConfigError(getattr(exc, "field", "ctl"), str(exc).split(": ", 1)[-1]) from None
        self.config_path: str | None = None  # the YAML, read again on reload (main sets it)
        self._reload_asked = False  # SIGHUP
        self._reloaded: Any = None  # the POST /reload ticket the YAML was read again for
        self.failsafe = Failsafe(clock)
        self.failsafe_headers = auth_headers(cfg.restapi, ctl if isinstance(ctl, dict) else {})
        self.control.failsafe = self.failsafe

    # ---- configuration -------------------------------------------------------
    def _settings(self, view: ClusterView) -> Settings:
        # no config key: the cached dynamic config (patroni.dynamic.json, or what was last
        # seen), else bootstrap.dcs, as Patroni
        dyn = view.config if view.config else \
            (self.dynamic_cache.saved or self.cfg.bootstrap.get("dcs") or {})
        # bootstrap.pg_hba is the bootstrap's (agent/bootstrap.py): as in Patroni, later
        # starts write pg_hba.conf only from postgresql.pg_hba (local or dynamic)
        return build_settings(dyn, self.local_pg)

    def ask_reload(self) -> None:
        """SIGHUP (a signal handler: only a flag and a wake-up)."""
        self._reload_asked = True
        self.wake.set()

    def reload_local(self) -> None:
        """On SIGHUP and POST /reload, as Patroni: read the YAML (and PATRONI_*) again
        and take its tags, logging their conflicts again; a file that no longer
        loads is logged and the running configuration kept.  The local
        postgresql.parameters and pg_hba are taken too: the RELOAD that follows
        writes them and reloads postgres (restart-only ones then show pending_restart)."""
        try:
            cfg = load(self.config_path)
            local_pg = {k: v for k, v in self.local_pg.items() if k not in RELOADED_PG}
            local_pg.update({k: cfg.postgresql[k] for k in RELOADED_PG if k in cfg.postgresql})
            if local_pg != self.local_pg:
                old, self.local_pg = self.local_pg, local_pg
                try:
                    self.settings = self._settings(self.mem.view)
                except SettingsError:
                    self.local_pg = old
                    raise
                log.info("reload: the local postgresql parameters/pg_hba were read again")
                for note in self.settings.notes:
                    log.warning("config: %s", note)
        except (ConfigError, SettingsError) as exc:
            log.error("reload: config error: %s; keeping the running configuration", exc)
            return
        for warning in tag_conflicts(cfg.tags):
            log.warning("%s", warning)
        if dict(cfg.tags) != self.tags:
            log.info("reload: tags are now %s", public_tags(cfg.tags))
            self.tags.clear()  # in place: the executor holds the same dict
            self.tags.update(cfg.tags)

    @staticmethod
    def _request_timeout(s: Settings) -> float:
        return max(0.5, min(s.retry_timeout / 2.0, 5.0))

    def _api_url(self) -> str:
        addr = str(self.cfg.restapi.get("connect_address") or self.cfg.restapi.get("listen"))
        scheme = "https" if self.cfg.restapi.get("certfile") else "http"
        return f"{scheme}://{addr.replace('0.0.0.0', '127.0.0.1')}/patroni"

    def _conn_url(self) -> str:
        addr = str(self.cfg.postgresql.get("connect_address") or self.pg.listen.split(",")[-1])
        return f"postgres://{addr.replace('0.0.0.0', '127.0.0.1')}/postgres"

    def _bootstrapped(self, ok: bool) -> None:
        if ok:
            role = Role.STANDBY_LEADER if self.settings.standby_cluster else Role.PRIMARY
            self.mem.role = role
            self.mem.state = "running"
            self.executor.announce(role)
            return
        # Give up as Patroni does: a bootstrap that failed once fails again the
        # same way, and a loop would rerun a restore or initdb every cycle.
        # The exit status lets the supervisor back off.
        moved = self.bootstrapper.moved_to
        log.critical("bootstrap failed: %s; %sinitialize is free again; exiting: fix the cause "
                     "and start the agent again", self.bootstrapper.failure,
                     f"the data directory is kept as {moved}; " if moved else "")
        self.exit_code = 1
        self.stopping.set()
        self.wake.set()

    # ---- the cycle -----------------------------------------------------------
    def observe(self) -> tuple[ClusterView, list[PeerStatus]]:
        try:
            view = self.dcs.get_cluster()
            self.mem.view, self.mem.dcs_ok = view, True
            self.mem.dcs_last_seen = time.time()
            if view.leader is not None and view.leader.name != self.cfg.name:
                self.mem.last_renew = None  # another holds the lock: we have no lease
        except DcsError as exc:
            if self.mem.dcs_ok:
                log.warning("DCS unreachable: %s", exc)
            self.mem.dcs_ok = False
        view = self.mem.view
        try:
            new = self._settings(view)
            if new != self.settings:
                for note in new.notes:
                    log.warning("config: %s", note)
                timeout = self._request_timeout(new)
                self.dcs.set_timeout(timeout)
                self._dcs_timeout = timeout
                self.watch_dcs.set_timeout(timeout)
                if (new.parameters, new.pg_hba) != (self.settings.parameters,
                                                    self.settings.pg_hba):
                    self.config_changed = True
            self.settings = new
        except SettingsError as exc:
            log.error("ignoring invalid config in the DCS (%s); keeping the previous settings", exc)
        return view, []

    def bound_dcs(self) -> None:
        """While this node holds a lease, no DCS call of the cycle may outlive
        the point where it must demote: each request (tried on every etcd host
        in turn, or twice within the v3 client's budget) gets a share of the
        time left."""
        normal = self._request_timeout(self.settings)
        timeout = normal
        if self.mem.last_renew is not None:
            left = self.mem.last_renew + self.settings.demote_after - self.clock()
            hosts = max(1, len(str(getattr(self.dcs, "where", "")).split(",")))
            timeout = max(0.2, min(normal, left / (2 * hosts)))
            if self.failsafe.leading_until is not None:
                timeout = min(timeout, 1.0)  # failsafe: only probe for the DCS's return
        if timeout != self._dcs_timeout:
            self.dcs.set_timeout(timeout)
            self._dcs_timeout = timeout

    def cycle(self) -> Decision:
        self.bound_dcs()
        view, _ = self.observe()
        pg = self.pg.observe()
        unanswered = self.pg.unanswered
        confirmed = self._failsafe_round(pg)
        now = self.clock()  # after the reads: a slow DCS must not make the demotion late
        task, result = self.runner.current(), self.runner.take_result()
        if result is not None and result.kind == TaskKind.START and result.ok:
            self.mem.crash_since = None
        i_lead = view.leader is not None and view.leader.name == self.cfg.name
        if i_lead and not pg.running and task is None and self.mem.was_running:
            self.mem.crash_since = self.mem.crash_since or now
            log.warning("postgres is not running under the leader")
        if pg.running:
            self.mem.crash_since = None
        peers: tuple[PeerStatus, ...] = ()
        wants_peers = view.leader is None or (i_lead and bool(view.failover))
        # primary_start_timeout 0: a crashed leader fails over if a replica can take over
        crashed = i_lead and self.mem.crash_since is not None \
            and self.settings.primary_start_timeout == 0
        if self.mem.dcs_ok and (wants_peers and pg.running or crashed) and task is None:
            peers = fetch_peers(view.members, self.cfg.name, self.peer_pool)
        if self.config_changed and pg.running and task is None:
            self.config_changed = False
            self.executor.apply_config(self.settings)
        if self._reload_asked:
            self._reload_asked = False
            self.reload_local()
            self._reloaded = self.control.request(Request.RELOAD)  # postgres reloads too
        ticket = self.control.pending() if task is None else None
        if ticket is not None and ticket.kind == Request.RELOAD and ticket is not self._reloaded:
            self._reloaded = ticket
            self.reload_local()
        self.executor.ticket = ticket
        local = replace(to_local(self.cfg.name, self.mem, pg, task, result, self.tags),
                        wall=time.time(), request=ticket.kind.value if ticket else None,
                        unguarded=self.unguarded(), failsafe=confirmed,
                        failsafe_leader=self.failsafe.leader(self.settings.ttl)
                        if self.settings.failsafe_mode else None,
                        diverged=self._diverged(view, pg, task), unanswered=unanswered)
        decision = decide(view, local, peers, self.settings, now)
        log.info("%s [%s/%s] %s", self.cfg.name, decision.goal.value, decision.reason.value,
                 decision.detail)
        self.mem.last_decision = decision
        if self.exit_code:
            return decision  # giving up (a failed bootstrap): act no more
        try:
            self.executor.run(decision, self.settings)
        except DcsError as exc:
            log.warning("DCS error while acting: %s", exc)
            self.mem.dcs_ok = False
        if decision.goal in SLOT_GOALS and self.mem.dcs_ok:
            self._replica_slots(view, pg)
        elif (pinged := self._failsafe_leader(view)) is not None:
            self._replica_slots(failsafe_plan.slot_view(view, pinged, self.failsafe.slots()),
                                pg, copy=False)
        if i_lead and self.mem.dcs_ok and view.config_index is None:
            self._restore_config()
        if not i_lead:
            self.slots.not_leading()
        self._after(view)
        return decision

    def pg_budget(self) -> float | None:
        """How long one PostgreSQL call of the HA loop may take (query.bound_thread):
        while this node holds a lease, the time left to its demotion point, at
        most retry_timeout/2 so that a cycle can try again; without one, unbounded."""
        if self.mem.last_renew is None:
            return None
        left = self.mem.last_renew + self.settings.demote_after - self.clock()
        return min(left, self.settings.retry_timeout / 2.0)

    def _restore_config(self) -> None:
        """The leader writes its cached dynamic config back into a DCS that lost the
        config key (wiped, or deleted by hand), as Patroni does."""
        cached = self.dynamic_cache.saved
        if not cached:
            return
        try:
            if self.dcs.write_config(cached, None):
                log.warning("the DCS holds no config: wrote back the cached dynamic "
                            "configuration (%s)", self.dynamic_cache.path.name)
        except DcsError as exc:
            log.warning("could not write the cached dynamic configuration: %s", exc)

    def _failsafe_round(self, pg: Any) -> str | None:
        """failsafe_mode, DCS unreachable, a running primary that held the lease:
        ask every member of /failsafe (agent/failsafe.py).  When all accept, the
        round counts as a renewal sent when the round started (lease, fence and
        watchdog move on); returns who confirmed, or None."""
        s = self.settings
        if self.mem.dcs_ok or not s.failsafe_mode or s.pause or not pg.running \
                or pg.in_recovery or self.mem.last_renew is None:
            if self.failsafe.leading_until is not None:
                log.info("failsafe mode is over: %s", "the DCS answers again" if self.mem.dcs_ok
                         else "no longer a primary holding the lease")
            self.failsafe.reset()
            return None
        body: dict[str, Any] = {"name": self.cfg.name, "conn_url": self.conn_url,
                                "api_url": self.api_url}
        try:
            positions = self.slots.positions(s, pg.wal_position or 0)
            if positions:
                body["slots"] = positions
        except Exception as exc:  # noqa: BLE001  the round goes on without them
            log.warning("could not read replication slots for POST /failsafe: %s", exc)
        sent = self.clock()
        rnd = confirm(self.mem.view.failsafe or {}, self.cfg.name, body, self.peer_pool,
                      self.failsafe_headers)
        was = self.failsafe.leading_until is not None
        self.failsafe.confirmed(sent, s.ttl, rnd)
        if not rnd.ok:
            log.warning("failsafe mode: not every member of /failsafe confirmed this primary "
                        "(%s): no renewal", rnd.summary())
            return None
        if not was:
            log.warning("DCS unreachable: failsafe mode active, %s", rnd.summary())
        self.mem.last_renew = max(self.mem.last_renew, sent)
        self.publish_lease()
        return rnd.summary()

    def _failsafe_leader(self, view: ClusterView) -> str | None:
        """The leader that asked this replica POST /failsafe within ttl, while
        /status tells nothing better (DCS unreachable, or no leader key)."""
        if not self.settings.failsafe_mode or (self.mem.dcs_ok and view.leader is not None):
            return None
        leader = self.failsafe.leader(self.settings.ttl)
        return leader if leader != self.cfg.name else None

    def _replica_slots(self, view: ClusterView, pg: Any, copy: bool = True) -> None:
        """A replica's slots follow the leader's (agent/slots.py); permanent logical
        slots it lacks are copied from the leader with a restart (not in failsafe
        mode: then they are only advanced, from the leader's POST /failsafe)."""
        if not (pg.running and pg.in_recovery) or self.runner.current() is not None:
            return
        try:
            missing = self.slots.maintain(view, self.settings, self.tags, leading=False,
                                          primary=False, copy=copy)
        except Exception as exc:
            log.warning("could not sync replication slots: %s", exc)
            return
        leader = view.leader_member
        due = self.slots.due_copies(missing)
        if not due or leader is None or not leader.conn_url:
            return
        try:
            files = self.slots.fetch_from_leader(leader.conn_url, due)
        except Exception as exc:
            log.warning("could not read logical slots from %s: %s", leader.name, exc)
            return
        if files:
            self.executor.copy_logical_slots(files, leader.conn_url)

    def _after(self, view: ClusterView) -> None:
        pg = self.pg.observe()
        self.mem.was_running = pg.running
        task = self.runner.current()
        if task is None and pg.running:
            self.mem.state = "running"
            if self.mem.role in (Role.UNINITIALIZED, Role.DEMOTED) or (
                    self.mem.role == Role.PRIMARY and pg.in_recovery):
                self.mem.role = Role.REPLICA if pg.in_recovery else Role.PRIMARY
            if self.mem.role == Role.REPLICA and not pg.in_recovery:
                self.mem.role = Role.PRIMARY
            i_lead = view.leader is not None and view.leader.name == self.cfg.name
            if pg.in_recovery and self.mem.role in (Role.REPLICA, Role.STANDBY_LEADER):
                standby_leader = i_lead and self.settings.standby_cluster is not None
                self.mem.role = Role.STANDBY_LEADER if standby_leader else Role.REPLICA
        elif task is None and not pg.running:
            self.mem.state = "stopped"
        elif task is not None:
            self.mem.state = task.kind.value
        self.mem.last_loop = self.clock()
        self.mem.scheduled_restart = self.control.scheduled_restart
        if self.mem.dcs_ok and view.config:
            self.dynamic_cache.save(view.config)
        self.publish_lease()
        self.publish(pg)
        if self.mem.dcs_ok:
            data = member_json(self.cfg.name, self.conn_url, self.api_url, self.mem, pg,
                               self.tags, self.status.pending_restart, self.settings.pause,
                               self.pg.last_snapshot if pg.running else None)
            try:
                self.dcs.touch_member(data, self.settings.ttl)
            except DcsError as exc:
                log.warning("could not update the member key: %s", exc)

    def _diverged(self, view: ClusterView, pg: Any, task: Any) -> bool | None:
        """remove_data_directory_on_diverged_timelines: whether this node's data
        left the leader's timeline (then it could never stream from it).

        Asked before postgres starts to follow the leader (not where a rewind
        is due instead), and of a running replica whose timeline is behind the
        leader's (as Patroni checks after a leader change): a former primary
        started as a replica while the check could not answer, or a replica
        that replayed WAL the new leader never had, keeps retrying a timeline
        it cannot follow.  An unknown answer (None: the leader's timeline or
        history not readable yet) is asked again every cycle, while the
        condition holds.  With use_pg_rewind on, a running replica is checked
        even with the remove setting off: a diverged one is rewound (as Patroni)."""
        s = self.settings
        leader = view.leader_member
        remove = s.remove_data_directory_on_diverged_timelines
        if not (remove or (s.use_pg_rewind and pg.running)) or s.standby_cluster is not None \
                or task is not None or not self.mem.dcs_ok or leader is None \
                or leader.name == self.cfg.name or not leader.conn_url \
                or leader.role not in ("primary", "master"):
            return None
        if pg.running:
            behind = max(leader.timeline, cluster_timeline(view.history))
            if not pg.in_recovery or not 0 < pg.timeline < behind:
                return None
            return diverge.check(self.pg.paths, leader.conn_url, self.pg.replication,
                                 self.pg.pgpass, running=(self.conn_url, pg.replayed))
        if pg.data in (DataState.EMPTY, DataState.UNKNOWN) \
                or (s.use_pg_rewind and pg.data in (DataState.PRIMARY, DataState.CRASHED_PRIMARY)):
            return None
        return diverge.check(self.pg.paths, leader.conn_url, self.pg.replication, self.pg.pgpass)

    def unguarded(self) -> str | None:
        """Why this node may not run a primary now, or None."""
        if not self.fence.ensure():
            return "the fence process cannot run"
        view = self.mem.view
        if view.leader is not None and view.leader.name == self.cfg.name \
                and not self._arm_watchdog():
            return f"watchdog required, but {self.watchdog.error}"
        return None

    def _arm_watchdog(self) -> bool:
        """Arm the watchdog for this leader; False only when mode is required
        and it cannot be armed (the node must not lead then)."""
        if self.settings.standby_cluster is not None:
            return True  # a standby leader takes no writes
        if self.settings.pause:
            self.watchdog.disable()  # maintenance: nothing may reset the host (as Patroni)
            return True
        armed = self.watchdog.activate(self.settings.ttl, self.settings.loop_wait)
        return armed or self.watchdog.cfg.mode != "required"

    def publish_lease(self) -> None:
        """Called right after each renewal (and at the end of each cycle), so
        a cycle that renews and then blocks is fenced on the new deadline,
        and the watchdog is fed from that renewal."""
        self.lease.publish(self.fence_deadline())
        if self.mem.last_renew is not None and not self.settings.pause:
            self.watchdog.keepalive()
        else:
            self.watchdog.disable()

    def lease_deadline(self) -> float | None:
        """Until when this node may act as the primary: from the last renewal
        it sent (reset whenever the lock is released, handed on or seen held
        by another member)."""
        if self.mem.last_renew is None:
            return None
        return self.mem.last_renew + self.settings.ttl - self.settings.lease_margin

    def fence_deadline(self) -> float | None:
        """When the fence stops postgres if no renewal came: after the agent's
        own demotion point (loop_wait + retry_timeout), before the lock expires.
        Paused: never (as Patroni's watchdog, the fence is off in maintenance mode:
        the operator runs postgres, a DCS outage or a stopped agent demotes nobody)."""
        if self.settings.pause:
            return float("inf")
        deadline = self.lease_deadline()
        if deadline is None:
            return None
        return deadline + self.settings.retry_timeout / 2.0

    def publish(self, pg: Any = None) -> None:
        pg = pg if pg is not None else self.pg.observe()
        status = node_status(self.cfg.name, self.cfg.scope, self.mem, pg,
                             self.pg.last_snapshot if pg.running else None,
                             self.settings, self.tags, self.lease_deadline())
        active = self.settings.failsafe_mode and self.failsafe.active(self.settings.ttl)
        self.status = replace(status, failsafe_active=active) if active else status

    # ---- running -------------------------------------------------------------
    def sleep(self, started: float) -> None:
        if self.wake.is_set():
            self.wake.clear()
            return
        if not self.mem.dcs_ok:
            self.wake.wait(min(1.0, self.settings.loop_wait))
        else:
            loop_wait = self.settings.loop_wait
            for k in range(1, SLOT_STEPS):
                rest = started + loop_wait * k / SLOT_STEPS - self.clock()
                if rest > 0 and self.wake.wait(rest):
                    break
                self._slots_between_cycles()
            else:
                rest = started + loop_wait - self.clock()
                if rest > 0:
                    self.wake.wait(rest)
        self.wake.clear()

    def _slots_between_cycles(self) -> None:
        """Slot positions also between cycles (issue 11: a replica's copies trail
        the leader's by at most one loop_wait): the leader publishes its slots'
        positions in /status, a replica reads /status and advances its slots.
        On this (the HA) thread, so never during the cycle's slot pass; nothing
        is created, dropped or copied here."""
        d = self.mem.last_decision
        view = self.mem.view
        if d is None or not self.mem.dcs_ok or self.runner.current() is not None \
                or not self.settings.use_slots or self.settings.pause:
            return
        try:
            if Action.WRITE_STATUS in d.actions:
                deadline = self.lease_deadline()
                if view.leader is None or view.leader.name != self.cfg.name \
                        or deadline is None or deadline <= self.clock():
                    return
                pg = self.pg.observe()
                if pg.running and not pg.in_recovery:
                    self.slots.positions(self.settings, pg.wal_position or 0)
                    self.executor.write_status(d)
            elif d.goal in SLOT_GOALS:
                pg = self.pg.observe()
                if pg.running and pg.in_recovery:
                    self.slots.advance(self.dcs.get_cluster(), self.settings, self.tags)
        except Exception as exc:  # noqa: BLE001  the next cycle does it again
            log.warning("could not update replication slots between cycles: %s", exc)

    def run(self) -> None:
        # Armed from what is known: a deadline the previous agent published
        # holds until this one renews; otherwise a primary left running stops.
        kept = self.lease.adopt()
        if kept is not None:
            log.info("keeping the previous agent's lease deadline (%.1fs left) until a renewal",
                     kept - time.monotonic())
        query.bound_thread(self.pg_budget)  # the loop's PostgreSQL calls end with the lease
        self.fence.ensure()
        watcher = threading.Thread(target=self._watch, name="leader-watch", daemon=True)
        watcher.start()
        while not self.stopping.is_set():
            started = self.clock()
            try:
                self.cycle()
            except Exception:
                log.exception("HA cycle failed")
            if self.stopping.is_set():
                break
            self.sleep(started)

    def _watch(self) -> None:
        """Wake the loop when the leader key changes hands or expires.

        Watches run in slices of at most 2 s, each from the index of the last
        view, so a change of eagerness (a node that starts waiting for the
        leader to be ready) applies quickly and no event is missed between.
        """
        while not self.stopping.is_set():
            view = self.mem.view
            i_lead = view.leader is not None and view.leader.name == self.cfg.name
            if i_lead or not self.mem.dcs_ok:
                self.stopping.wait(0.2)
                continue
            eager = self.mem.last_decision is not None and self.mem.last_decision.goal in EAGER_GOALS
            if self.watch_dcs.watch_leader(view, min(2.0, self.settings.loop_wait), eager=eager):
                self.wake.set()
                deadline = time.monotonic() + 5
                while self.mem.view is view and time.monotonic() < deadline:
                    if self.stopping.wait(0.02):
                        return

    def shutdown(self) -> None:
        """SIGTERM: stop postgres cleanly, then release the lock and our member key."""
        self.stopping.set()
        self.wake.set()
        self.runner.wait_idle(30)
        if self.settings.pause:
            # as Patroni: postgres keeps running and the keys stay (they expire with ttl);
            # the fence stops first and the lease file keeps "paused" (inf) for a restart
            log.info("paused: leaving postgres running and the leader key in place")
            self.fence.stop()
            self.watchdog.disable()
            self.callbacks.wait_idle(10)
            return
        log.info("shutting down: stopping postgres")
        self.mem.state = "stopping"
        self.publish()
        role = self.mem.role.value
        limit = self.settings.stop_timeout  # primary_stop_timeout, synchronous mode only
        if limit is not None:
            log.info("primary_stop_timeout: aborting the stop after %.0fs", limit)
        self.pg.stop("fast", timeout=limit or max(self.settings.retry_timeout, 30),
                     abort_after=limit or 30.0)
        self.callbacks.fire("on_stop", role)
        try:
            if self.dcs.release_leader():
                log.info("released the leader lock")
            self.dcs.delete_member()
        except DcsError as exc:
            log.warning("could not clean up DCS keys: %s", exc)
        self.mem.state = "stopped"
        self.lease.publish(None)
        self.watchdog.disable()
        self.fence.stop()
        self.callbacks.wait_idle(10)
