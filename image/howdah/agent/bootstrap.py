"""Bootstrapping a new cluster (initdb), run as a task while we hold the lock."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

from howdah.core.settings import Settings, build_settings
from howdah.dcs.base import Dcs
from howdah.pg import bootstrap as pgboot
from howdah.core.models import truthy
from howdah.pg import clone, methods
from howdah.pg.proc import run_logged
from howdah.pg.instance import Instance

log = logging.getLogger(__name__)


class Bootstrapper:
    def __init__(self, dcs: Dcs, pg: Instance, scope: str, bootstrap_cfg: Mapping[str, Any],
                 on_done: Callable[[bool], None], on_started: Callable[[], None]) -> None:
        self.on_started = on_started
        self.dcs = dcs
        self.pg = pg
        self.scope = scope
        self.cfg = bootstrap_cfg
        self.on_done = on_done
        self.failure: str | None = None  # why the last bootstrap failed
        self.moved_to: str | None = None  # where its data directory was moved

    def added_hba(self) -> tuple[str, ...]:
        """bootstrap.pg_hba, when no postgresql.pg_hba (local or bootstrap.dcs) manages
        the file: it is for the bootstrap only (later starts leave pg_hba.conf alone)."""
        dyn_pg = (self.cfg.get("dcs") or {}).get("postgresql") or {}
        hba = self.cfg.get("pg_hba")
        if not hba or self.pg.cfg.get("pg_hba") or dyn_pg.get("pg_hba"):
            return ()
        return tuple(str(line) for line in hba)

    def settings(self) -> Settings:
        """After initdb (and for a standby cluster) pg_hba.conf is bootstrap.pg_hba alone
        (a deliberate difference: Patroni appends it to initdb's file, whose `trust` lines
        come first); a custom method's file gets it appended (finish_bootstrapped)."""
        dyn = dict(self.cfg.get("dcs") or {})
        local_pg = dict(self.pg.cfg)
        method = str(self.cfg.get("method") or "initdb")
        if self.added_hba() and (method == "initdb" or dyn.get("standby_cluster")):
            local_pg["pg_hba"] = list(self.added_hba())
        return build_settings(dyn, local_pg)

    def _fail(self, cause: str) -> bool:
        log.error("bootstrap: %s", cause)
        self.failure = self.failure or cause
        return False

    def _dcs_config(self) -> dict[str, Any]:
        """bootstrap.dcs as the cluster's first config; timing values the rule
        adjusted are stored adjusted, as Patroni stores them."""
        dyn = dict(self.cfg.get("dcs") or {})
        settings = self.settings()
        if settings.notes:
            dyn.update(ttl=settings.ttl, loop_wait=settings.loop_wait,
                       retry_timeout=settings.retry_timeout)
        return dyn

    def run(self) -> bool:
        started = time.monotonic()
        self.failure = None
        try:
            ok = self._steps()
        except Exception as exc:
            log.exception("bootstrap failed")
            ok = self._fail(f"unexpected error: {exc}")
        if not ok:
            self.failure = self.failure or "see the errors above"
            self._cleanup()
        else:
            log.info("bootstrap finished in %.1fs", time.monotonic() - started)
        self.on_done(ok)
        return ok

    def _steps(self) -> bool:
        pg, settings = self.pg, self.settings()
        method = str(self.cfg.get("method") or "initdb")
        if settings.standby_cluster is not None:
            if not self._standby(settings):
                return False
        elif method == "initdb":
            options = pgboot.initdb_options(self.cfg.get("initdb"))
            if not pgboot.run_initdb(pg.paths.bin_dir, pg.paths.data_dir, options, pg.superuser):
                return self._fail("initdb failed (its output is above)")
            if not pg.start(settings, None, standby=False, timeout=300):
                return self._fail("postgres did not start after initdb (its log is above)")
        elif not self._custom(method, settings):
            return False
        self.on_started()
        if settings.standby_cluster is not None:
            return self._finish_standby()
        # roles only on a session opened once the server is writable (a session of
        # the recovery, or a check made while the promotion ran, is no proof)
        if not pg.wait_writable(timeout=600):
            return self._fail("the new cluster did not become writable")
        pgboot.create_roles(pg.db, pg.superuser, pg.replication, pg.rewind_user)
        post = self.cfg.get("post_bootstrap") or self.cfg.get("post_init")
        if post:
            url = pgboot.local_url(pg.db.params)
            if not pgboot.run_post_bootstrap(str(post), url, pg.pgpass):
                return self._fail(f"post_bootstrap {post!r} failed")
        if method != "initdb" and not pg.finish_bootstrapped(settings, self.added_hba()):
            return self._fail(f"postgres did not come back with the configured settings after "
                              f"bootstrap method {method}")
        snap = pg.db.snapshot()
        if snap is None:
            return self._fail("cannot query the new cluster")
        if not self.dcs.write_config(self._dcs_config(), None):
            log.info("config key already present: keeping it")
        if not self.dcs.set_initialize(snap.sysid):
            return self._fail(f"could not record system identifier {snap.sysid} in initialize")
        log.info("cluster initialized with system identifier %s", snap.sysid)
        return True

    def _finish_standby(self) -> bool:
        snap = self.pg.db.snapshot()
        if snap is None:
            return self._fail("cannot query the new standby cluster")
        if not self.dcs.write_config(self._dcs_config(), None):
            log.info("config key already present: keeping it")
        log.info("standby cluster initialized with system identifier %s", snap.sysid)
        if not self.dcs.set_initialize(snap.sysid):
            return self._fail(f"could not record system identifier {snap.sysid} in initialize")
        return True

    def _standby(self, settings: Settings) -> bool:
        """A standby cluster is born as a replica of its remote primary (or archive)."""
        std = settings.standby_cluster or {}
        url = f"postgres://{std['host']}:{std.get('port') or 5432}/postgres" \
            if std.get("host") else None
        log.info("bootstrapping a standby cluster from %s", url or "the WAL archive")
        if not self.pg.create_replica(url, False, std):
            return self._fail(f"no replica method could copy {url or 'the WAL archive'}")
        self.pg.configure(settings, url, standby=True, remote=std)
        if not self.pg.start_standby(timeout=3600):
            return self._fail("the standby leader's postgres did not start")
        return True

    def _custom(self, method: str, settings: Settings) -> bool:
        """Run `bootstrap.<method>.command`, then start (and recover) what it made."""
        pg, spec = self.pg, methods.section(self.cfg, method)
        try:
            argv = methods.bootstrap_argv(method, spec, self.scope, pg.paths.data_dir)
        except methods.MethodError as exc:
            return self._fail(str(exc))
        pg.paths.data_dir.mkdir(parents=True, exist_ok=True)
        code = run_logged(argv, f"bootstrap {method}", env={"PGPASSFILE": str(pg.pgpass)})
        if code != 0:
            return self._fail(f"bootstrap.{method}.command exited with status {code}")
        if not (pg.paths.data_dir / "PG_VERSION").exists():
            return self._fail(f"bootstrap method {method} left no data directory in "
                              f"{pg.paths.data_dir}")
        (pg.paths.data_dir / "postmaster.pid").unlink(missing_ok=True)
        # a promote trigger left by the tool would end the recovery at once
        (pg.paths.data_dir / "promote").unlink(missing_ok=True)
        recovery = spec.get("recovery_conf") if "recovery_conf" in spec else None
        if recovery is not None and not isinstance(recovery, Mapping):
            return self._fail(f"bootstrap.{method}.recovery_conf must be a map of recovery "
                              f"settings, not {type(recovery).__name__}")
        keep = truthy(spec.get("keep_existing_recovery_conf"))
        if not pg.start_bootstrapped(settings, recovery, keep):
            return self._fail(f"postgres did not start on what bootstrap method {method} made")
        if not pg.wait_writable(timeout=86400 * 7):
            return self._fail(f"recovery of what bootstrap method {method} made did not end "
                              f"(postgres stopped: its log says why)")
        return True

    def _cleanup(self) -> None:
        """Free initialize and the lock, and move the failed data directory
        aside to <data_dir>.failed (replacing an older one), as Patroni does."""
        log.warning("bootstrap failed: freeing initialize and moving the new data directory aside")
        try:
            self.pg.stop("immediate", timeout=30)
            self.moved_to = clone.move_aside(self.pg.paths.data_dir, "failed")
        finally:
            self.dcs.clear_initialize()
            self.dcs.release_leader()
