"""User callbacks: `<cmd> <action> <role> <scope>`, never blocking the HA loop.

A newer callback cancels a still-running older one, a hung callback is killed
after a timeout - with every process it started, even one that moved to a
session of its own (:func:`kill_tree`) - and every outcome is logged with its
exit code and duration.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Mapping

log = logging.getLogger(__name__)
ACTIONS = ("on_start", "on_stop", "on_restart", "on_reload", "on_role_change")


def problems(callbacks: Mapping[str, Any]) -> list[str]:
    """What is wrong with the configured callbacks, one sentence each."""
    found = []
    for action, cmd in callbacks.items():
        if action not in ACTIONS:
            found.append(f"postgresql.callbacks.{action}: unknown callback; use one of "
                         + ", ".join(ACTIONS))
            continue
        argv = shlex.split(str(cmd or ""))
        if not argv:
            found.append(f"postgresql.callbacks.{action}: empty command")
            continue
        exe = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
        if not exe or not os.path.isfile(exe):
            found.append(f"postgresql.callbacks.{action}: {argv[0]} does not exist")
        elif not os.access(exe, os.X_OK):
            found.append(f"postgresql.callbacks.{action}: {exe} is not executable (chmod +x it)")
    return found


class Callbacks:
    def __init__(self, callbacks: Mapping[str, Any], scope: str, timeout: float = 60.0) -> None:
        self.commands = {k: str(v) for k, v in (callbacks or {}).items() if k in ACTIONS and v}
        self.scope = scope
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running: subprocess.Popen[bytes] | None = None
        # This agent's REST API, passed to hooks as HOWDAH_LEADER_CHECK: a hook that moves an
        # address asks it (GET /primary) just before acting.
        self.api_base = ""
        for line in problems(callbacks or {}):
            log.error("callback problem: %s", line)

    def fire(self, action: str, role: str) -> None:
        cmd = self.commands.get(action)
        if not cmd:
            return
        argv = shlex.split(cmd) + [action, role, self.scope]
        with self._lock:
            self._cancel_running()
            try:
                env = {**os.environ, "HOWDAH_LEADER_CHECK": self.api_base} if self.api_base else None
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True, env=env)
            except OSError as exc:
                log.error("callback %s %s failed to start: %s", action, role, exc)
                return
            self._running = proc
        threading.Thread(target=self._wait, args=(proc, action, role, time.monotonic()),
                         name=f"callback-{action}", daemon=True).start()

    def _cancel_running(self) -> None:
        old = self._running
        if old is not None and old.poll() is None:
            log.info("cancelling the still running callback (pid %s) for a newer one", old.pid)
            _kill_group(old)
        self._running = None

    def _wait(self, proc: subprocess.Popen[bytes], action: str, role: str, started: float) -> None:
        try:
            code = proc.wait(timeout=self.timeout)
            outcome = f"exited with {code}"
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
            outcome = f"killed after the {self.timeout:.0f}s timeout"
        took = time.monotonic() - started
        if proc.returncode and proc.returncode < 0 and "timeout" not in outcome:
            outcome = f"cancelled (signal {-proc.returncode})"
        log.info("callback %s %s %s: %s in %.2fs", action, role, self.scope, outcome, took)

    def wait_idle(self, timeout: float) -> None:
        proc = self._running
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    kill_tree(proc.pid)


def _processes(proc_root: str = "/proc") -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process we can see."""
    found: dict[int, tuple[int, int]] = {}
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return found
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"{proc_root}/{name}/stat", encoding="latin-1") as handle:
                fields = handle.read().rpartition(")")[2].split()
            found[int(name)] = (int(fields[1]), int(fields[3]))
        except (OSError, ValueError, IndexError):
            continue
    return found


def tree(root: int, proc_root: str = "/proc") -> set[int]:
    """root, its descendants, and anything left in root's session (a double-forked child)."""
    procs = _processes(proc_root)
    members = {root} | {pid for pid, (_ppid, sid) in procs.items() if sid == root}
    frontier = list(members)
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _sid) in procs.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    return members


def kill_tree(root: int) -> None:
    """SIGKILL root and every process it started: each is stopped first (so none forks a new
    one meanwhile), the tree is scanned again until nothing new appears, then all die."""
    stopped: set[int] = set()
    for _ in range(10):
        new = tree(root) - stopped - {os.getpid()}
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                pass
        stopped |= new
    try:
        os.killpg(root, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in stopped | {root}:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def still_leader(env: Mapping[str, str], role: str, timeout: float = 5.0) -> str | None:
    """For the hook scripts (scripts/vip_hook.py, scripts/aws_hook.py), before they move an address.

    None when the local agent confirms, right now, that this node holds the leader key and
    runs as ``role`` (GET /primary or /standby-leader answers 200); else the reason not to act.

    HOWDAH_LEADER_CHECK: the local REST API (default http://127.0.0.1:$APIPORT, 8008); "off"
    skips the check (tests).  A role callback runs after the fact: a newer event may already
    have demoted this node, and moving the address then would take it from the real primary."""
    base = env.get("HOWDAH_LEADER_CHECK", "").strip()
    if base.lower() == "off":
        return None
    base = (base or f"http://127.0.0.1:{env.get('APIPORT', '').strip() or 8008}").rstrip("/")
    path = "/standby-leader" if role == "standby_leader" else "/primary"
    context = ssl._create_unverified_context() if base.startswith("https:") else None  # our own loopback
    try:
        with urllib.request.urlopen(base + path, timeout=timeout, context=context) as resp:
            if resp.status == 200:
                return None
            return f"{base}{path} answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"{base}{path} answered {exc.code}: this node is no longer the {role}"
    except (OSError, ValueError) as exc:
        return f"cannot ask the local agent ({base}{path}: {exc})"
