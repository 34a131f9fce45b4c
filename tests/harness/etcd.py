"""A real single-member etcd 3.4 (Debian's) on free ports, with or without the v2 API."""
from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from . import procs, web
from .ports import Reservation

ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"
DCS_KINDS = ("etcd3", "etcd")


def default_dcs() -> str:
    """The DCS the local tier runs on: tests/conftest.py's --dcs (HARNESS_DCS), else etcd3."""
    kind = os.environ.get("HARNESS_DCS") or "etcd3"
    if kind not in DCS_KINDS:
        raise ValueError(f"HARNESS_DCS={kind!r}: expected one of {DCS_KINDS}")
    return kind


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
PRIVATE_BIN_DIR = Path(os.environ.get("HARNESS_BIN_DIR", "/var/tmp/howdah-harness-bin"))


def _all_threads_stopped(pid: int) -> bool:
    """Every task of pid is in state T (stopped), read from /proc."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/stat", encoding="ascii", errors="replace") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                    return False
    except OSError:
        return True  # gone: nothing answers
    return True


def private_etcd() -> str:
    """A private copy of the etcd binary (a copy, not a link: a new inode).

    `service etcd stop` (tools/setup-host.sh runs it) uses start-stop-daemon
    --exec /usr/bin/etcd, which matches every process whose executable is that
    inode: it would kill the etcd of every test or benchmark running meanwhile.
    """
    src = Path(ETCD_BIN).resolve()
    st = src.stat()
    dst = PRIVATE_BIN_DIR / f"etcd-{st.st_size}-{int(st.st_mtime)}"
    if not dst.exists():
        PRIVATE_BIN_DIR.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    return str(dst)


class EtcdServer:
    """etcd on 127.0.0.1, data and log under workdir; v2=False starts it with
    --enable-v2=false (the v3 API only, as etcd 3.6 is)."""

    def __init__(self, workdir: str | Path | None = None,
                 ports: Reservation | None = None, name: str = "etcd0", *,
                 v2: bool = True, extra_args: list[str] | None = None,
                 tls: tuple[str, str] | None = None) -> None:
        self.v2 = v2
        self.extra_args = list(extra_args or [])
        self.tls = tls  # (certfile, keyfile): clients must speak https
        self.root_password: str | None = None  # set by enable_auth()
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="howdah-etcd-"))
        self._own_ports = ports is None
        self._ports = ports or Reservation()
        self.name = name
        self.client_port, self.peer_port = self._ports.take_many(2)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "etcd.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.client_port}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start etcd and wait until it reports healthy and serves v2 keys."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        peer = f"http://127.0.0.1:{self.peer_port}"
        cmd = [
            private_etcd(), "--name", self.name, "--data-dir", str(data),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{self.name}={peer}",
            "--initial-cluster-state", "new", f"--enable-v2={'true' if self.v2 else 'false'}",
            *self.extra_args,
        ]
        if self.tls:
            cmd += ["--cert-file", self.tls[0], "--key-file", self.tls[1]]
        procs.register_root(self.workdir)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        procs.manage(self.proc.pid)
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}:\n"
                                   + self.log_text())
            if time.monotonic() > deadline:
                raise TimeoutError("etcd not healthy in time:\n" + self.log_text())
            time.sleep(0.1)

    def _request(self, path: str, body: Any = None, timeout: float = 3.0,
                 token: bool = True) -> tuple[int, Any]:
        """One request to this etcd (a root token when auth is on; TLS unverified)."""
        headers: dict[str, str] = {}
        if token and self.root_password is not None:
            code, data = self._request("/v3/auth/authenticate", {
                "name": "root", "password": self.root_password}, timeout, token=False)
            if code == 200 and isinstance(data, dict):
                headers["Authorization"] = str(data.get("token"))
        method = "GET" if body is None else "POST"
        if not self.tls:
            return web.request(self.url + path, method=method, body=body, timeout=timeout,
                               headers=headers)
        import http.client
        import json
        import ssl
        ctx = ssl._create_unverified_context()
        conn = http.client.HTTPSConnection("127.0.0.1", self.client_port, timeout=timeout,
                                           context=ctx)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body),
                         headers={"Content-Type": "application/json", **headers})
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        except (OSError, ValueError, http.client.HTTPException):
            return web.NO_RESPONSE, None
        finally:
            conn.close()

    def enable_auth(self, root_password: str, users: dict[str, tuple[str, str]]) -> None:
        """etcd's v3 auth: root, plus users {name: (password, key prefix they may
        read and write)}; then every request needs a token."""
        def call(path: str, body: dict[str, Any]) -> None:
            code, data = self._request(path, body)
            if code != 200:
                raise RuntimeError(f"etcd {path} {body.get('name', '')}: {code} {data}")

        call("/v3/auth/user/add", {"name": "root", "password": root_password})
        call("/v3/auth/role/add", {"name": "root"})
        call("/v3/auth/user/grant", {"user": "root", "role": "root"})
        for name, (password, prefix) in users.items():
            raw = prefix.encode()
            call("/v3/auth/role/add", {"name": name})
            call("/v3/auth/role/grant", {"name": name, "perm": {
                "permType": "READWRITE", "key": _b64(prefix),
                "range_end": base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()}})
            call("/v3/auth/user/add", {"name": name, "password": password})
            call("/v3/auth/user/grant", {"user": name, "role": name})
        call("/v3/auth/enable", {})
        self.root_password = root_password

    def healthy(self) -> bool:
        code, body = self._request("/health", timeout=2, token=False)
        if code != 200 or not isinstance(body, dict) or body.get("health") != "true":
            return False
        if not self.v2:
            return True
        code, _ = web.request(self.url + "/v2/keys/", timeout=2)
        return code == 200

    @property
    def dcs_kind(self) -> str:
        """The agents' config section for this server (etcd: v2 API, etcd3: v3)."""
        return "etcd" if self.v2 else "etcd3"

    def get(self, key: str, timeout: float = 3.0) -> str | None:
        """Value of a key such as '/service/demo/leader' (v2 API, or v3 when v2 is
        off), None if absent/unreachable."""
        if not self.v2:
            return self.keys(key, timeout, exact=True).get(key)
        code, body = web.request(f"{self.url}/v2/keys{key}", timeout=timeout)
        if code == 200 and isinstance(body, dict):
            value: Any = body.get("node", {}).get("value")
            return value if isinstance(value, str) else None
        return None

    def keys(self, prefix: str, timeout: float = 3.0, exact: bool = False,
             v3: bool | None = None) -> dict[str, str]:
        """{key: value} of every key under prefix in the v3 keyspace (v3=True, the
        default when v2 is off) or the v2 one; {} when unreachable."""
        if v3 if v3 is not None else not self.v2:
            body: Any = {"key": _b64(prefix)}
            if not exact:
                raw = prefix.encode()
                body["range_end"] = base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()
            code, data = self._request("/v3/kv/range", body, timeout)
            if code != 200 or not isinstance(data, dict):
                return {}
            return {base64.b64decode(kv["key"]).decode(): base64.b64decode(
                kv.get("value") or "").decode() for kv in data.get("kvs") or []}
        code, data = web.request(f"{self.url}/v2/keys{prefix}?recursive=true", timeout=timeout)
        out: dict[str, str] = {}

        def walk(node: Any) -> None:
            for child in node.get("nodes") or []:
                walk(child)
            if not node.get("dir") and isinstance(node.get("value"), str):
                out[str(node["key"])] = node["value"]

        if code == 200 and isinstance(data, dict):
            walk(data.get("node") or {})
        return out

    def freeze(self) -> None:
        """SIGSTOP: etcd stops answering, connections hang (not refused).

        Returns once every thread of etcd is stopped: a group stop takes effect thread by
        thread, and on a loaded machine a thread can still answer a request meanwhile."""
        if self.proc is not None:
            procs.signal_pid(self.proc.pid, signal.SIGSTOP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _all_threads_stopped(self.proc.pid):
                time.sleep(0.01)

    def thaw(self) -> None:
        if self.proc is not None:
            procs.signal_pid(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill etcd (and anything else under its directory); idempotent."""
        if self.proc is not None:
            self.thaw()
            procs.signal_pid(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            procs.unmanage(self.proc.pid)
        procs.kill_all_under(self.workdir)
        procs.unregister_root(self.workdir)
        if self._own_ports:
            self._ports.release()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_text(self, tail: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no etcd log)"
        return "\n".join(lines[-tail:])

    def __enter__(self) -> "EtcdServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
