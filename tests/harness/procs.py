"""Process helpers: find, kill and reap the processes a harness started.

Every process the harness spawns runs with its working directory inside the
harness's own temporary tree, and PostgreSQL chdirs into its data directory.
So "the processes of node X" are exactly the processes whose cwd lies under
X's directory; cleanup uses that, which also catches postmasters that an
agent detached and helpers (pg_basebackup, pg_rewind) it left behind.

The harness process makes itself a child subreaper, so postmasters orphaned by
a killed agent are re-parented to us and reaped here (pid 1 on some hosts does
not reap; a zombie postmaster would make PostgreSQL refuse to restart on the
same data directory because its stale lock file names a "live" pid).
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from pathlib import Path
from typing import Iterable

PR_SET_CHILD_SUBREAPER = 36
_managed: set[int] = set()  # pids owned by a subprocess.Popen: never reap those here
_reapable: set[int] = set()  # adopted harness processes, seen alive under a root
_roots: set[str] = set()  # harness directories whose processes we may adopt
_lock = threading.Lock()
_reaper_started = False


def manage(pid: int) -> None:
    """Mark a pid as reaped by its Popen object, not by the background reaper."""
    with _lock:
        _managed.add(pid)


def unmanage(pid: int) -> None:
    with _lock:
        _managed.discard(pid)


def register_root(directory: str | Path) -> None:
    """Processes working under directory may be adopted and reaped by us."""
    with _lock:
        _roots.add(os.path.realpath(directory).rstrip("/") + "/")


def unregister_root(directory: str | Path) -> None:
    with _lock:
        _roots.discard(os.path.realpath(directory).rstrip("/") + "/")


def _under_root(pid: int) -> bool:
    cwd = cwd_of(pid)
    if cwd is None:
        return False
    with _lock:
        return any((cwd + "/").startswith(root) for root in _roots)


# Zombies with these names are PostgreSQL processes an agent detached (so
# they were re-parented to us): always ours to reap. A short-lived postmaster
# can start and stop between two scans, so it cannot rely on being seen alive.
ADOPTABLE_NAMES = frozenset({"postgres", "postmaster"})


def reap_orphans() -> None:
    """Reap adopted harness processes that died.

    Reaped: zombies named like PostgreSQL, and processes first seen alive with
    a cwd under a registered root. Never Popen-owned pids, so other subprocess
    users in this interpreter (wrk, setup scripts) keep their exit statuses.
    """
    me = os.getpid()
    existing = set()
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is None:
            continue
        existing.add(pid)
        with _lock:
            if pid in _managed:
                continue
            known = pid in _reapable
        if stat[0] == "Z":
            if stat[1] == me and (known or stat[2] in ADOPTABLE_NAMES):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        elif not known and stat[1] == me and _under_root(pid):
            with _lock:
                _reapable.add(pid)
    with _lock:
        _reapable.intersection_update(existing)


def adopt_under(directory: str | Path) -> None:
    """Note every live process working under directory as ours to reap; call
    it right before killing a process whose children will then die."""
    pids = pids_under(directory)
    with _lock:
        _reapable.update(p for p in pids if p not in _managed)


def _zombie_child() -> bool:
    """Whether any child of ours has exited (peeked, not reaped: WNOWAIT)."""
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return info is not None


def start_reaper() -> None:
    """Become a child subreaper and reap adopted orphans in a daemon thread."""
    global _reaper_started
    with _lock:
        if _reaper_started:
            return
        _reaper_started = True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except OSError:
        pass

    def loop() -> None:
        last_scan = 0.0
        while True:
            time.sleep(0.1)
            try:
                # a full /proc scan when a child is a zombie, else once a second
                if _zombie_child() or time.monotonic() - last_scan >= 1.0:
                    last_scan = time.monotonic()
                    reap_orphans()
            except Exception:  # noqa: BLE001 - never let the reaper die
                pass

    threading.Thread(target=loop, name="harness-reaper", daemon=True).start()


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, ppid, name) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), raw[raw.index("(") + 1:raw.rindex(")")]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cwd_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def pids_under(directory: str | Path) -> list[int]:
    """Live processes (not us) whose working directory is inside directory."""
    root = os.path.realpath(directory).rstrip("/") + "/"
    me = os.getpid()
    found = []
    for pid in _all_pids():
        if pid == me or not alive(pid):
            continue
        cwd = cwd_of(pid)
        if cwd is not None and (cwd + "/").startswith(root):
            found.append(pid)
    return found


def signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait until none of pids is alive; True on success."""
    pending = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        reap_orphans()
        pending = [p for p in pending if alive(p)]
        if not pending:
            reap_orphans()  # the ones that just turned into zombies
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def kill_all_under(directory: str | Path, timeout: float = 30.0) -> bool:
    """SIGKILL every process working inside directory, until none is left."""
    deadline = time.monotonic() + timeout
    while True:
        pids = pids_under(directory)
        if not pids:
            return True
        with _lock:  # harness processes: reap them if they end up adopted by us
            _reapable.update(p for p in pids if p not in _managed)
        for pid in pids:
            signal_pid(pid, signal.SIGCONT)  # a stopped process dies only once continued
            signal_pid(pid, signal.SIGKILL)
        wait_gone(pids, 2.0)
        if time.monotonic() >= deadline:
            return not pids_under(directory)


def read_pid_file(path: str | Path) -> int | None:
    """First line of a pid file (postmaster.pid, agent.pid) as int, or None."""
    try:
        first = Path(path).read_text().splitlines()[0].strip()
        return int(first)
    except (OSError, IndexError, ValueError):
        return None


def _kb_field(pid: int, proc_file: str, key: str) -> int | None:
    """The kB figure on the `key:` line of /proc/<pid>/<proc_file>."""
    try:
        for line in Path(f"/proc/{pid}/{proc_file}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kb(pid: int) -> int | None:
    """VmRSS of a process in kB, from /proc/<pid>/status."""
    return _kb_field(pid, "status", "VmRSS")


def pss_kb(pid: int) -> int | None:
    """Proportional set size of a process in kB (shared pages divided among
    the processes mapping them), from /proc/<pid>/smaps_rollup."""
    return _kb_field(pid, "smaps_rollup", "Pss")


def remove_orphan_shm(creator_pids: Iterable[int]) -> None:
    """Drop SysV shared memory left by killed postmasters (nattch 0, created by them)."""
    wanted = set(creator_pids)
    try:
        lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return
    for line in lines:
        cols = line.split()
        if len(cols) < 7:
            continue
        shmid, cpid, nattch = int(cols[1]), int(cols[4]), int(cols[6])
        if cpid in wanted and nattch == 0:
            os.system(f"ipcrm -m {shmid} >/dev/null 2>&1")
