"""One HA agent process (howdah or patroni) and the PostgreSQL it manages."""
from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg2
import yaml

from . import procs, web
from .config import SUPERUSER, NodeSpec, agent_command, agent_config

PROBE_TABLE = "harness_probe"
PROBE_DDL = (f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (id bigserial PRIMARY KEY, "
             "writer text NOT NULL, at timestamptz NOT NULL DEFAULT now())")
RUN_AS = "postgres"  # PostgreSQL refuses to run as root


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs),
                     *(os.path.join(root, f) for f in files)]:
            shutil.chown(name, RUN_AS, RUN_AS)


class AgentNode:
    """An agent of `kind` ("howdah" or "patroni") with its own work directory.

    Layout of spec.workdir (owned by postgres, 0700): agent.yml, agent.log,
    data/ (PGDATA), pglog/ (PostgreSQL's log), pgpass, the unix socket.
    """

    def __init__(self, spec: NodeSpec, kind: str, extra: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = kind
        self.workdir = spec.workdir
        self.data_dir = spec.workdir / "data"
        self.config_path = spec.workdir / "agent.yml"
        self.log_path = spec.workdir / "agent.log"
        self.config: dict[str, Any] = agent_config(spec, extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self._tls_context: ssl.SSLContext | None = None

    # --- addresses ------------------------------------------------------
    @property
    def pg_port(self) -> int:
        return self.spec.pg_port

    @property
    def api_port(self) -> int:
        return self.spec.api_port

    @property
    def tls(self) -> bool:
        """The REST API speaks https (restapi.certfile is set)."""
        return bool((self.config.get("restapi") or {}).get("certfile"))

    @property
    def api_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.spec.api_port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """The client side of the node's REST TLS as patronictl would set it up from
        the same config: trust ctl.cacert (else restapi.cafile), present
        ctl.certfile/keyfile when set. None for a plain-http API."""
        if not self.tls:
            return None
        if self._tls_context is None:
            ctl, rest = self.config.get("ctl") or {}, self.config.get("restapi") or {}
            ctx = ssl.create_default_context(cafile=ctl.get("cacert") or rest.get("cafile"))
            if ctl.get("certfile"):
                ctx.load_cert_chain(ctl["certfile"], ctl.get("keyfile"),
                                    password=ctl.get("keyfile_password"))
            self._tls_context = ctx
        return self._tls_context

    # --- process control ------------------------------------------------
    def start(self) -> None:
        """Write the config and start the agent as the postgres user."""
        if self.is_running():
            raise RuntimeError(f"{self.name}: agent already running")
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.workdir, 0o700)
        os.chmod(self.data_dir, 0o700)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        _chown_tree(self.workdir)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(self.workdir), "PYTHONUNBUFFERED": "1", "TZ": "UTC"}
        user: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = {"user": RUN_AS, "group": RUN_AS, "extra_groups": []}
        procs.register_root(self.workdir)
        with open(self.log_path, "ab") as log:
            log.write(f"=== harness: starting {self.kind} at {time.ctime()} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(agent_command(self.kind, self.config_path),
                                         cwd=self.workdir, env=env, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True, **user)
        procs.manage(self.proc.pid)
        if os.geteuid() == 0:
            shutil.chown(self.log_path, RUN_AS, RUN_AS)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def agent_pid(self) -> int | None:
        return self.proc.pid if self.is_running() and self.proc else None

    def postmaster_pid(self) -> int | None:
        """The live postmaster's pid (first line of data_dir/postmaster.pid)."""
        pid = procs.read_pid_file(self.data_dir / "postmaster.pid")
        if pid is not None and procs.alive(pid) and \
                procs.cwd_of(pid) == os.path.realpath(self.data_dir):
            return pid
        return None

    def stop_sigterm(self, timeout: float = 120.0) -> int:
        """SIGTERM the agent and wait for it to exit; returns its exit code.
        Raises TimeoutError if it is still running after timeout."""
        if self.proc is None:
            raise RuntimeError(f"{self.name}: never started")
        self.thaw()
        procs.signal_pid(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name}: agent still running {timeout}s after "
                               f"SIGTERM") from None
        procs.unmanage(self.proc.pid)
        return code

    def kill9(self, timeout: float = 60.0) -> None:
        """Node loss: SIGKILL the agent, then the postmaster and every other
        process of this node, and wait until all are gone."""
        postmaster = self.postmaster_pid()
        procs.adopt_under(self.workdir)
        if self.proc is not None:
            procs.signal_pid(self.proc.pid, signal.SIGKILL)
            procs.signal_pid(self.proc.pid, signal.SIGCONT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"{self.name}: agent survived SIGKILL") from None
            procs.unmanage(self.proc.pid)
        if postmaster is not None:
            procs.signal_pid(postmaster, signal.SIGKILL)
        if not procs.kill_all_under(self.workdir, timeout) or \
                (postmaster is not None and not procs.wait_gone([postmaster], timeout)):
            raise TimeoutError(f"{self.name}: processes left after SIGKILL")

    def freeze(self) -> None:
        """SIGSTOP the agent process only (PostgreSQL keeps running)."""
        if self.proc is not None:
            procs.signal_pid(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None:
            procs.signal_pid(self.proc.pid, signal.SIGCONT)

    def freeze_node(self) -> list[int]:
        """Host hang: SIGSTOP the agent and every PostgreSQL process of this
        node. Connections to it hang instead of being refused. Returns the pids."""
        pids = procs.pids_under(self.workdir)
        for pid in pids:
            procs.signal_pid(pid, signal.SIGSTOP)
        return pids

    def thaw_node(self) -> None:
        for pid in procs.pids_under(self.workdir):
            procs.signal_pid(pid, signal.SIGCONT)

    def destroy(self) -> None:
        """Kill everything of this node (cleanup; never raises)."""
        postmasters = [p for p in [procs.read_pid_file(self.data_dir / "postmaster.pid")] if p]
        try:
            self.kill9(timeout=30)
        except Exception:  # noqa: BLE001 - best effort, then sweep again
            procs.kill_all_under(self.workdir, 30)
        procs.remove_orphan_shm(postmasters)
        procs.unregister_root(self.workdir)

    # --- observation ----------------------------------------------------
    @property
    def api_auth(self) -> tuple[str, str] | None:
        """(username, password) of this node's restapi.authentication, if any."""
        auth = (self.config.get("restapi") or {}).get("authentication")
        if isinstance(auth, dict) and auth.get("username"):
            return str(auth["username"]), str(auth.get("password") or "")
        return None

    def api(self, path: str, method: str = "GET", body: Any = None,
            timeout: float = 3.0, auth: bool = True) -> tuple[int, Any]:
        """(status, json) of a REST call; (0, None) if the API did not answer.

        The node's restapi.authentication is sent unless ``auth`` is False."""
        return web.request(self.api_url + path, method, body, timeout,
                           context=self.tls_context(), auth=self.api_auth if auth else None)

    def role(self) -> str | None:
        """The role /patroni reports ("primary", "replica", ...), None if no answer."""
        code, body = self.api("/patroni")
        if code and isinstance(body, dict):
            role = body.get("role")
            return role if isinstance(role, str) else None
        return None

    def connect(self, connect_timeout: int = 2) -> Any:
        """A new autocommit psycopg2 connection as the superuser over TCP."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.pg_port, dbname="postgres",
                                user=SUPERUSER[0], password=SUPERUSER[1],
                                connect_timeout=connect_timeout,
                                application_name="harness",
                                options="-c statement_timeout=5000")
        conn.autocommit = True
        return conn

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement; rows if it returns any, else []. Raises on error."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def is_writable(self) -> bool:
        """True only if a real INSERT commits here; False on any error."""
        try:
            conn = self.connect()
        except Exception:  # noqa: BLE001
            return False
        try:
            with conn.cursor() as cur:
                cur.execute(PROBE_DDL)
                cur.execute(f"INSERT INTO {PROBE_TABLE} (writer) VALUES (%s)", (self.name,))
            return True
        except Exception:  # noqa: BLE001
            return False
        finally:
            conn.close()

    def rss_kb(self) -> int | None:
        """VmRSS of the agent process, in kB."""
        pid = self.agent_pid
        return procs.rss_kb(pid) if pid else None

    def helper_pids(self) -> list[int]:
        """This node's processes besides the agent and PostgreSQL (Howdah's
        fence process; Patroni has none)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.agent_pid:
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(self.workdir).encode() not in b" ".join(argv):
                continue
            if argv[0].startswith(b"postgres") or argv[0].endswith(b"/postgres"):
                continue
            pids.append(int(entry.name))
        return pids

    def helper_rss_kb(self) -> int:
        return sum(procs.rss_kb(p) or 0 for p in self.helper_pids())

    def pss_kb(self) -> int | None:
        """Proportional set size of the agent and its helper processes, in kB."""
        pid = self.agent_pid
        if not pid:
            return None
        return sum(procs.pss_kb(p) or 0 for p in [pid, *self.helper_pids()])

    def log_text(self, tail: int = 80) -> str:
        """Last lines of the agent log and of PostgreSQL's log, for failure messages."""
        parts = []
        for title, path in (("agent", self.log_path),
                            ("postgres", self.workdir / "pglog" / "postgresql.log")):
            try:
                lines = path.read_text(errors="replace").splitlines()[-tail:]
            except OSError:
                lines = ["(none)"]
            parts.append(f"--- {self.name} {title} log ({path}) ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"AgentNode({self.name!r}, {self.kind}, pg={self.pg_port}, api={self.api_port})"
