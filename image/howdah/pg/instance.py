"""The local PostgreSQL instance as the agent drives it."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import psycopg2

from howdah.core.models import DataState, PgStatus
from howdah.core.settings import Settings
from howdah.core.models import truthy as conf_truthy
from howdah.pg import clone, conf, ctl, methods
from howdah.pg.params import ServerParameters, server_major
from howdah.pg.proc import run_logged
from howdah.pg.conf import Credentials
from howdah.pg.query import LocalDb, Snapshot

log = logging.getLogger(__name__)


def _creds(auth: Mapping[str, Any], role: str) -> Credentials | None:
    section = auth.get(role)
    if not isinstance(section, dict) or not section.get("username"):
        return None
    pw = section.get("password")
    tls = tuple((k, str(section[k])) for k in conf.LIBPQ_TLS_KEYS
                if section.get(k) not in (None, ""))
    return Credentials(str(section["username"]), None if pw is None else str(pw), tls)


def _libpq_major() -> int:
    """The major of the libpq psycopg2 runs on (150018 -> 15)."""
    return int(psycopg2.extensions.libpq_version()) // 10000


def local_host(listen: str) -> str:
    host = listen.rpartition(":")[0].split(",")[0].strip()
    return "127.0.0.1" if host in ("", "*", "0.0.0.0", "::") else host


def _startup_log(pg_cfg: Mapping[str, Any]) -> Path | None:
    """postgresql.startup_log (Howdah's): a file (or /proc/1/fd/1 for the container's log) for
    the postmaster's own output; unset, it joins the agent's output."""
    value = pg_cfg.get("startup_log")
    return Path(str(value)) if value else None


class Instance:
    def __init__(self, name: str, pg_cfg: Mapping[str, Any], scope: str = "") -> None:
        self.name = name
        self.cfg_scope = scope
        self.cfg = pg_cfg
        params = pg_cfg.get("parameters") or {}
        sockets = str(params.get("unix_socket_directories") or "/var/run/postgresql")
        listen = str(pg_cfg.get("listen") or "127.0.0.1:5432")
        self.paths = ctl.PgPaths(Path(str(pg_cfg["data_dir"])),
                                 Path(str(pg_cfg.get("bin_dir") or "/usr/lib/postgresql/15/bin")),
                                 tuple(d.strip() for d in sockets.split(",")),
                                 conf.listen_port(listen.split(",")[-1])[1],
                                 _startup_log(pg_cfg))
        auth = pg_cfg.get("authentication") or {}
        self.superuser = _creds(auth, "superuser") or Credentials("postgres", None)
        self.replication = _creds(auth, "replication") or self.superuser
        self.rewind_user = _creds(auth, "rewind")
        self.listen = str(pg_cfg.get("listen") or "127.0.0.1:5432")
        self.port = conf.listen_port(self.listen.split(",")[-1])[1]
        default_pgpass = self.paths.data_dir.parent / f".pgpass_{name}"
        self.pgpass = Path(str(pg_cfg.get("pgpass") or default_pgpass))
        # pgpass lines name the server each password is for: this node's own (every role), and
        # the one host a replication, clone or rewind connection goes to (that role only)
        self._pgpass_remote: dict[str, tuple[str, int, Credentials]] = {}
        self._write_pgpass()
        self.db = LocalDb({
            "host": local_host(self.listen), "port": self.port, "user": self.superuser.username,
            "password": self.superuser.password, "dbname": "postgres",
            "application_name": "howdah", **self.superuser.tls_options(_libpq_major()),
        })
        self.last_snapshot: Snapshot | None = None
        self.unanswered = False  # the last observe() timed out on a running postmaster
        self._tool_hba: str | None = None  # pg_hba.conf as a custom bootstrap method left it
        self._bootstrap_hot_standby_off = False
        self.server_parameters = ServerParameters(self.paths.bin_dir)

    # ---- pgpass --------------------------------------------------------------
    def local_hosts(self) -> list[str]:
        """The names this node's own server is reached by: its listen and connect addresses, the
        loopback names and its socket directories."""
        hosts = list(conf.LOCAL_HOSTS)
        for item in self.listen.rpartition(":")[0].split(","):
            host = item.strip().strip("[]")
            if host and host not in ("*", "0.0.0.0", "::"):
                hosts.append(host)
        connect = str(self.cfg.get("connect_address") or "").rpartition(":")[0].strip("[]")
        if connect:
            hosts.append(connect)
        hosts += [d for d in self.paths.socket_dirs if d]
        return list(dict.fromkeys(hosts))

    def _write_pgpass(self) -> None:
        local = [(h, self.port, c) for c in (self.superuser, self.replication, self.rewind_user) if c
                 for h in self.local_hosts()]
        conf.write_pgpass(self.pgpass, local + list(self._pgpass_remote.values()))

    def _scope_pgpass(self, purpose: str, url: str | None, creds: Credentials | None) -> None:
        """The pgpass line for `purpose` (upstream, clone, rewind): `creds` for the server at
        `url` only; no url or creds removes it."""
        if url and creds:
            host, port = conf.split_conn_url(url)
            entry = (host, port, creds)
            if self._pgpass_remote.get(purpose) == entry:
                return
            self._pgpass_remote[purpose] = entry
        elif self._pgpass_remote.pop(purpose, None) is None:
            return
        self._write_pgpass()

    # ---- observation -------------------------------------------------------
    def observe(self) -> PgStatus:
        pid = ctl.postmaster_pid(self.paths)
        running = pid is not None
        snap = self.db.snapshot() if running else None
        if not running:
            self.db.close()
        # the postmaster runs but did not answer within the caller's bound (query.bound_thread)
        self.unanswered = snap is None and running and self.db.timed_out
        self.last_snapshot = snap
        if snap is not None:
            state = DataState.REPLICA if snap.in_recovery else DataState.PRIMARY
            return PgStatus(
                data=state, running=True, in_recovery=snap.in_recovery, sysid=snap.sysid,
                timeline=snap.timeline, wal_position=snap.wal_position, replayed=snap.replayed,
                upstream_host=conf.configured_upstream(self.paths.data_dir) if snap.in_recovery else None,
                streaming=snap.receiver_status == "streaming", postmaster_pid=pid,
            )
        data, sysid = ctl.data_state(self.paths, running)
        # running but not answering (starting up): treat as not running for decisions,
        # except that we must never start it twice; start() is idempotent.
        return PgStatus(data=data, running=False, sysid=sysid,
                        in_recovery=data == DataState.REPLICA)

    # ---- configuration -----------------------------------------------------
    def configure(self, settings: Settings, upstream_url: str | None, standby: bool,
                  remote: Mapping[str, Any] | None = None) -> None:
        """Write the config files; `remote` is the standby_cluster section when this
        node is a standby leader replicating from outside the cluster."""
        recovery: dict[str, Any] | None = None
        self._scope_pgpass("upstream", upstream_url if standby else None, self.replication)
        if standby:
            recovery = {"recovery_target_timeline": "latest"}
            if upstream_url:
                recovery["primary_conninfo"] = conf.upstream_conninfo(
                    upstream_url, self.replication, self.name, str(self.pgpass),
                    server_major(self.paths.bin_dir))
                slot = (remote or {}).get("primary_slot_name") if remote is not None \
                    else conf.slot_name(self.name)
                if slot and (settings.use_slots or remote is not None):
                    recovery["primary_slot_name"] = slot
            restore = (remote or {}).get("restore_command") or \
                (self.cfg.get("recovery_conf") or {}).get("restore_command")
            if restore:
                recovery["restore_command"] = restore
            for key in ("recovery_min_apply_delay", "archive_cleanup_command"):
                if remote and remote.get(key) not in (None, ""):
                    recovery[key] = remote[key]
        self._write_files(settings, recovery, standby)

    def _write_files(self, settings: Settings, recovery: Mapping[str, Any] | None,
                     standby: bool | None) -> None:
        """postgresql.conf with the parameters as this server's major accepts them."""
        conf.write_files(self.paths.data_dir, self.listen,
                         self.server_parameters(settings.parameters), settings.pg_hba,
                         recovery, standby)

    # ---- actions -----------------------------------------------------------
    def start(self, settings: Settings, upstream_url: str | None, standby: bool,
              timeout: float) -> bool:
        if ctl.is_running(self.paths):
            return True
        self.configure(settings, upstream_url, standby)
        if standby:
            self.ensure_upstream_slot(settings, upstream_url)
        return ctl.start(self.paths, timeout)

    def start_bootstrapped(self, settings: Settings, recovery: Mapping[str, Any] | None,
                           keep_existing: bool) -> bool:
        """Start what a custom bootstrap method made, as Patroni does: with the method's
        recovery_conf (recovery.signal, or standby.signal for `standby_mode: on`), with
        the tool's own recovery settings and signal files (keep_existing), or else as a
        primary (every signal file and auto.conf recovery setting gone).  The local
        users get in without a password until the roles are set (bootstrap_hba), and
        hot_standby is off when recovery ends in a promotion, so that nothing connects
        before the server is writable (and a PITR to a source with larger
        max_connections & co. does not stop)."""
        data = self.paths.data_dir
        hba = data / "pg_hba.conf"
        try:
            self._tool_hba = hba.read_text(errors="replace")
        except OSError:
            self._tool_hba = None
        recovery = dict(recovery) if recovery is not None else None
        standby_mode = conf_truthy(recovery.pop("standby_mode", None)) if recovery else False
        action = str((recovery or {}).get("recovery_target_action") or "").lower()
        if not action and recovery and "pause_at_recovery_target" in recovery:
            action = "pause" if conf_truthy(recovery.get("pause_at_recovery_target")) else "promote"
        self._bootstrap_hot_standby_off = keep_existing or action == "promote"
        params = dict(settings.parameters)
        if self._bootstrap_hot_standby_off:
            params["hot_standby"] = "off"
        host = local_host(self.listen)
        conf.write_files(data, self.listen, self.server_parameters(params),
                         conf.bootstrap_hba(self.superuser.username, self.replication.username,
                                            conf.addresses(host)),
                         recovery or None, standby=None)
        if recovery is not None:
            (data / "standby.signal").unlink(missing_ok=True)
            (data / "recovery.signal").unlink(missing_ok=True)
            (data / ("standby.signal" if standby_mode else "recovery.signal")).touch()
        elif not keep_existing:
            (data / "standby.signal").unlink(missing_ok=True)
            (data / "recovery.signal").unlink(missing_ok=True)
        if not keep_existing:
            removed = conf.strip_auto_conf_recovery(data)
            if removed:
                log.info("bootstrap: removed %s from postgresql.auto.conf", ", ".join(removed))
        self.db.close()
        # a long archive recovery may outlast pg_ctl's wait: a running postmaster is enough,
        # wait_promoted follows the recovery from here
        return ctl.start(self.paths, 3600) or ctl.is_running(self.paths)

    def finish_bootstrapped(self, settings: Settings, added_hba: tuple[str, ...] = ()) -> bool:
        """After a custom bootstrap's roles are set: the configured pg_hba (or, when none
        is configured, the one the method restored with added_hba - bootstrap.pg_hba -
        appended, as Patroni appends it), postgresql.conf without recovery
        settings, no signal file and no recovery setting in postgresql.auto.conf;
        restarted where hot_standby was turned off, else reloaded; then a new
        connection, with the configured password."""
        data = self.paths.data_dir
        self._write_files(settings, None, standby=False)
        if not settings.pg_hba and self._tool_hba is not None:
            added = "\n" + "\n".join(added_hba) + "\n" if added_hba else ""
            conf.atomic_write(data / "pg_hba.conf", self._tool_hba + added)
        removed = conf.strip_auto_conf_recovery(data)
        if removed:
            log.info("bootstrap: removed %s from postgresql.auto.conf", ", ".join(removed))
        self.db.close()
        if self._bootstrap_hot_standby_off:
            self._bootstrap_hot_standby_off = False
            log.info("bootstrap: restarting postgres with the configured parameters")
            if not ctl.stop(self.paths, "fast", 300):
                return False
            return ctl.start(self.paths, 600)
        return ctl.reload(self.paths)

    def start_standby(self, timeout: float) -> bool:
        """Start with the recovery settings already written (standby.signal)."""
        return ctl.start(self.paths, timeout)

    def wait_writable(self, timeout: float) -> bool:
        """Wait until recovery has ended and a new session may write.

        Asked on a new connection every time, never the cached one: a session opened
        during recovery is not what the roles must be created on.  Ends False if the
        postmaster stops (a recovery target not reached, a crash) or at timeout."""
        deadline = time.monotonic() + timeout
        last_log = 0.0
        while time.monotonic() < deadline:
            if not ctl.is_running(self.paths):
                log.error("postgres stopped during recovery")
                return False
            probe = LocalDb(dict(self.db.params))
            state = None
            try:
                row = probe.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only'),"
                                    " (SELECT timeline_id FROM pg_control_checkpoint())")[0]
                state = (bool(row[0]), str(row[1]), row[2])
            except (psycopg2.Error, IndexError):
                pass
            finally:
                probe.close()
            if state is not None and not state[0] and state[1] == "off":
                log.info("recovery finished: postgres is writable")
                self.db.close()  # the next query opens a new session too
                return True
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                log.info("waiting for recovery to finish (%s)",
                         "in recovery" if state else "not accepting connections yet")
            time.sleep(1)
        return False

    def observe_upstream(self) -> str | None:
        return conf.configured_upstream(self.paths.data_dir)

    def follow_remote(self, settings: Settings, url: str | None,
                      remote: Mapping[str, Any]) -> bool:
        self.configure(settings, url, standby=True, remote=remote)
        return ctl.reload(self.paths)

    def follow(self, settings: Settings, upstream_url: str) -> bool:
        self.configure(settings, upstream_url, standby=True)
        self.ensure_upstream_slot(settings, upstream_url)
        return ctl.reload(self.paths)

    def reload(self) -> bool:
        return ctl.reload(self.paths)

    def stop(self, mode: str = "fast", timeout: float = 60, abort_after: float = 30) -> bool:
        self.db.close()
        return ctl.stop(self.paths, mode, timeout, abort_after)

    def _remote_db(self, conn_url: str, creds: Credentials | None = None) -> LocalDb:
        """A connection to a peer's postgres: as the superuser (what reads the leader's files for
        logical slots needs), or as `creds`."""
        host, port = conf.split_conn_url(conn_url)
        creds = creds or self.superuser
        return LocalDb({"host": host, "port": port, "user": creds.username,
                        "password": creds.password, "dbname": "postgres", "application_name": "howdah",
                        **creds.tls_options(_libpq_major())})

    def _peer_db(self, conn_url: str) -> LocalDb:
        """A connection to a member's postgres for slot creation on the upstream and a
        switchover target's received WAL: as the replication user (REPLICATION is all either
        needs), since the address comes from the member's key and the superuser's password
        is for this node's own server and the leader's."""
        return self._remote_db(conn_url, self.replication)

    def ensure_upstream_slot(self, settings: Settings, upstream_url: str | None) -> None:
        """Create our physical slot on the upstream when it lacks one.

        A node that was down while another took over (or long enough for its
        member key to expire) finds no slot on the new leader, whose next HA
        cycle may be loop_wait away; meanwhile the WAL receiver fails and
        retries only every wal_retrieve_retry_interval.  The leader keeps
        the slot from then on, as it keeps every member's.
        """
        if upstream_url and settings.use_slots:
            self._create_slot_on(upstream_url)

    def _create_slot_on(self, url: str) -> bool:
        """Our physical slot exists on `url` (created now if it was missing)."""
        name = conf.slot_name(self.name)
        db = self._peer_db(url)
        try:
            db.execute("SELECT pg_create_physical_replication_slot(%s, true) WHERE NOT EXISTS "
                       "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (name, name))
            return True
        except psycopg2.Error as exc:  # a race with the leader's own creation, or no access
            log.debug("could not create slot %s upstream: %s", name, exc)
            return False
        finally:
            db.close()

    def remote_received(self, conn_url: str) -> int | None:
        """The WAL position a replica has received (or replayed), asked of
        its postgres directly: a peer's REST status may be a cycle old."""
        db = self._peer_db(conn_url)
        try:
            row = db.execute(
                "SELECT GREATEST(COALESCE(pg_last_wal_receive_lsn() - '0/0', 0),"
                " COALESCE(pg_last_wal_replay_lsn() - '0/0', 0))")[0]
            return int(row[0])
        except (psycopg2.Error, IndexError, TypeError, ValueError):
            return None
        finally:
            db.close()

    def shutdown_checkpoint(self) -> int | None:
        return ctl.shutdown_checkpoint(self.paths)

    def promote(self, timeout: float = 60) -> bool:
        """pg_ctl promote, waiting at most timeout; a promotion still running
        then counts as done once postgres left recovery."""
        if ctl.promote(self.paths, timeout):
            return True
        snap = self.db.snapshot()
        return snap is not None and not snap.in_recovery

    def rewind(self, source_url: str) -> bool:
        creds = self.rewind_user or self.superuser
        self._scope_pgpass("rewind", source_url, creds)
        try:
            return clone.rewind(self.paths, source_url, creds, self.pgpass)
        finally:
            self._scope_pgpass("rewind", None, None)

    def create_replica(self, source_url: str | None, create_slot: bool,
                       standby: Mapping[str, Any] | None = None) -> bool:
        """Try create_replica_methods in order until one leaves a data directory."""
        self._scope_pgpass("clone", source_url, self.replication)
        try:
            return self._create_replica(source_url, create_slot, standby)
        finally:
            self._scope_pgpass("clone", None, None)

    def _create_replica(self, source_url: str | None, create_slot: bool,
                        standby: Mapping[str, Any] | None) -> bool:
        names = methods.method_names(self.cfg, standby)
        for name in names:
            spec = methods.section(self.cfg, name)
            leaderless = conf_truthy(spec.get("no_master")) or conf_truthy(spec.get("no_leader"))
            if source_url is None and not leaderless:
                log.info("replica method %s needs a running leader: skipped", name)
                continue
            if name == "basebackup":
                clone.clean_data_dir(self.paths.data_dir)  # a keep_data method may have left some
                if self.basebackup(str(source_url), create_slot):
                    return True
                continue
            if not conf_truthy(spec.get("keep_data")):
                clone.clean_data_dir(self.paths.data_dir)
            connstring = ""
            if source_url:
                host, port = conf.split_conn_url(source_url)
                connstring = conf.conninfo({
                    "dbname": "postgres", "user": self.replication.username, "host": host,
                    "port": port,
                    **self.replication.tls_options(server_major(self.paths.bin_dir))})
            try:
                argv = methods.replica_argv(name, spec, self.cfg_scope, self.paths.data_dir,
                                            connstring)
            except methods.MethodError as exc:
                log.error("replica method %s: %s", name, exc)
                continue
            self.paths.data_dir.mkdir(parents=True, exist_ok=True)
            code = run_logged(argv, f"replica method {name}", env={"PGPASSFILE": str(self.pgpass)})
            if code == 0 and (self.paths.data_dir / "PG_VERSION").exists():
                log.info("replica created with method %s", name)
                return True
            log.warning("replica method %s failed (exit %s)", name, code)
        if not any(conf_truthy(methods.section(self.cfg, n).get("keep_data")) for n in names):
            clone.clean_data_dir(self.paths.data_dir)
        return False

    def basebackup(self, source_url: str, create_slot: bool) -> bool:
        """pg_basebackup.  The leader keeps a slot per member (and lists its slots in
        the status key); when ours is not there yet, the backup creates it, so the
        new replica can stream at once instead of waiting for the leader's cycle."""
        options = clone.basebackup_options(self.cfg.get("basebackup"))
        if create_slot and not any(o.startswith(("--slot", "--create-slot")) for o in options):
            # made beforehand (it may exist already: the leader's cycle may have
            # made it), so that pg_basebackup only has to use it
            made = self._create_slot_on(source_url)
            slot = [f"--slot={conf.slot_name(self.name)}"] if made else \
                ["--create-slot", f"--slot={conf.slot_name(self.name)}"]
            if clone.basebackup(self.paths, source_url, self.replication, self.pgpass,
                                options + slot, self.name):
                return True  # else go on without a slot
        return clone.basebackup(self.paths, source_url, self.replication, self.pgpass,
                                options, self.name)
