"""A real single-member etcd 3.4 (Debian's) on free ports, with or without the v2 API."""
from __future__ import annotations

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
PRIVATE_BIN_DIR = Path(os.environ.get("HARNESS_BIN_DIR", "/var/tmp/howdah-harness-bin"))


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
                 v2: bool = True, extra_args: list[str] | None = None) -> None:
        self.v2 = v2
        self.extra_args = list(extra_args or [])
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
        return f"http://127.0.0.1:{self.client_port}"

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

    def healthy(self) -> bool:
        code, body = web.request(self.url + "/health", timeout=2)
        if code != 200 or not isinstance(body, dict) or body.get("health") != "true":
            return False
        if not self.v2:
            return True
        code, _ = web.request(self.url + "/v2/keys/", timeout=2)
        return code == 200

    def get(self, key: str, timeout: float = 3.0) -> str | None:
        """Value of a v2 key such as '/service/demo/leader', None if absent/unreachable."""
        code, body = web.request(f"{self.url}/v2/keys{key}", timeout=timeout)
        if code == 200 and isinstance(body, dict):
            value: Any = body.get("node", {}).get("value")
            return value if isinstance(value, str) else None
        return None

    def freeze(self) -> None:
        """SIGSTOP: etcd stops answering, connections hang (not refused)."""
        if self.proc is not None:
            procs.signal_pid(self.proc.pid, signal.SIGSTOP)

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
