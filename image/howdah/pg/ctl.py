"""Process control of one PostgreSQL instance through pg_ctl."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from howdah.core.models import DataState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PgPaths:
    data_dir: Path
    bin_dir: Path
    socket_dirs: tuple[str, ...] = ("/var/run/postgresql",)
    port: int = 5432
    # Where the postmaster's own stdout/stderr go (postgresql.startup_log); None: the agent's
    # own output, as Patroni does. Never inside the data directory, so nothing grows unrotated
    # there and lands in every base backup.
    startup_log: Path | None = None

    def bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def socket_locks(self) -> list[Path]:
        return [Path(d) / f".s.PGSQL.{self.port}.lock" for d in self.socket_dirs if d]


def controldata(paths: PgPaths) -> dict[str, str]:
    """pg_controldata as a dict; empty when it cannot be read."""
    try:
        out = subprocess.run(
            [paths.bin("pg_controldata"), "-D", str(paths.data_dir)],
            capture_output=True, text=True, timeout=30,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0:
        return {}
    result = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            result[key.strip()] = value.strip()
    return result


def parse_lsn(text: str) -> int | None:
    """``'0/5000028'`` as an integer, None when it is not an LSN."""
    high, sep, low = text.partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16) if sep else None
    except ValueError:
        return None


def shutdown_checkpoint(paths: PgPaths) -> int | None:
    """Where the shutdown checkpoint record starts, when postgres was shut down cleanly."""
    cd = controldata(paths)
    if cd.get("Database cluster state") != "shut down":
        return None
    return parse_lsn(cd.get("Latest checkpoint location", ""))


def has_data(paths: PgPaths) -> bool:
    d = paths.data_dir
    return d.is_dir() and any(d.iterdir())


def data_state(paths: PgPaths, running: bool) -> tuple[DataState, str | None]:
    """(what the data directory holds, its system identifier)."""
    if not has_data(paths):
        return DataState.EMPTY, None
    if not (paths.data_dir / "PG_VERSION").exists():
        return DataState.UNKNOWN, None
    cd = controldata(paths)
    state = cd.get("Database cluster state", "")
    sysid = cd.get("Database system identifier")
    if (paths.data_dir / "backup_label").exists():
        # a fresh base backup (or a rewound directory): the control file is
        # the source's, but this copy can only start in recovery
        return DataState.REPLICA, sysid
    if state in ("shut down in recovery", "in archive recovery"):
        return DataState.REPLICA, sysid
    if state == "shut down":
        return DataState.PRIMARY, sysid
    if state in ("in production", "in crash recovery", "shutting down"):
        if running and (paths.data_dir / "standby.signal").exists():
            return DataState.REPLICA, sysid
        return (DataState.PRIMARY if running else DataState.CRASHED_PRIMARY), sysid
    return DataState.UNKNOWN, sysid


def postmaster_pid(paths: PgPaths) -> int | None:
    """PID of a live postmaster for this data directory, else None."""
    try:
        first = (paths.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first.strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    # A stale pid file and a recycled pid (a restarted container reuses low
    # pids): a postmaster runs in its data directory.
    try:
        return pid if os.path.realpath(f"/proc/{pid}/cwd") == os.path.realpath(paths.data_dir) \
            and os.readlink(f"/proc/{pid}/cwd") else None
    except OSError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    exe = cmdline.split(b"\0", 1)[0]
    return pid if exe.endswith((b"postgres", b"postmaster")) else None


def is_running(paths: PgPaths) -> bool:
    return postmaster_pid(paths) is not None


def pg_ctl(paths: PgPaths, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [paths.bin("pg_ctl"), "-D", str(paths.data_dir), *args]
    log.debug("running %s", " ".join(cmd))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _pid_is_postmaster(pid: int) -> bool:
    try:
        exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return exe.endswith((b"postgres", b"postmaster"))


def clear_stale_locks(paths: PgPaths) -> None:
    """A killed container restarts with low pids recycled: the pid in a left-over
    postmaster.pid or socket lock file may now be some other process, and
    postgres would refuse to start.  Remove lock files no live postmaster owns."""
    pidfile = paths.data_dir / "postmaster.pid"
    if pidfile.exists() and postmaster_pid(paths) is None:
        log.warning("removing a stale %s", pidfile)
        pidfile.unlink(missing_ok=True)
    for lock in paths.socket_locks():
        try:
            pid = int(lock.read_text().split("\n", 1)[0].strip())
        except (OSError, ValueError):
            continue
        if not _pid_is_postmaster(pid):
            log.warning("removing a stale socket lock %s (pid %s is no postmaster)", lock, pid)
            lock.unlink(missing_ok=True)


def start(paths: PgPaths, timeout: float) -> bool:
    """Start and wait until postgres accepts connections (or timeout)."""
    if is_running(paths):
        return True
    clear_stale_locks(paths)
    cmd = [paths.bin("pg_ctl"), "-D", str(paths.data_dir), "start", "-w", "-t", str(int(max(timeout, 1)))]
    if paths.startup_log is not None:
        cmd += ["-l", str(paths.startup_log)]
    log.debug("running %s", " ".join(cmd))
    try:
        # Not captured: the postmaster inherits these descriptors for its lifetime, so a pipe
        # here would never reach end-of-file. Its lines join the agent's own output.
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        return is_running(paths)
    if res.returncode != 0:
        where = _tail(paths.startup_log) if paths.startup_log is not None and paths.startup_log.is_file() else \
            " (the server's own lines are in the log above)"
        log.error("postgres failed to start: pg_ctl exited %s%s", res.returncode, where)
        return False
    return True


def _tail(path: Path | None, lines: int = 5) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return " | " + " | ".join(text) if text else ""


def stop(paths: PgPaths, mode: str = "fast", timeout: float = 60,
         abort_after: float = 30) -> bool:
    """Stop postgres; escalate to immediate if the mode does not finish in
    time, and to SIGKILL of the postmaster and its children when an immediate
    stop does not finish within abort_after."""
    pid = postmaster_pid(paths)
    if pid is None:
        return True
    sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
    os.kill(pid, sig)
    if _wait_gone(pid, timeout):
        return True
    log.warning("postgres did not stop in %ss with mode %s: stopping immediately", timeout, mode)
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return True
    if _wait_gone(pid, abort_after):
        return True
    log.warning("postgres did not stop immediately in %ss: sending SIGKILL to the postmaster "
                "and its children", abort_after)
    return kill_tree(pid)


def kill_tree(pid: int) -> bool:
    """SIGKILL a postmaster and its children (suspended first, so it starts
    no new child meanwhile); True once the postmaster is gone."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return True
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(entry.name))
    for target in [pid, *children]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass
    gone = _wait_gone(pid, 10)
    for child in children:
        _wait_gone(child, 5)
    return gone


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie child of ours counts as gone
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def promote(paths: PgPaths, timeout: float = 60) -> bool:
    res = pg_ctl(paths, "promote", "-w", "-t", str(int(timeout)), timeout=timeout + 10)
    if res.returncode != 0:
        log.error("promote failed: %s", res.stderr.strip())
    return res.returncode == 0


def reload(paths: PgPaths) -> bool:
    pid = postmaster_pid(paths)
    if pid is None:
        return False
    os.kill(pid, signal.SIGHUP)
    return True
