"""User callbacks: `<cmd> <action> <role> <scope>`, never blocking the HA loop.

A newer callback cancels a still-running older one (its whole process group),
a hung callback is killed after a timeout, and every outcome is logged with
its exit code and duration.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
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
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
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
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
