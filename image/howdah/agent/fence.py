"""The agent's side of the fence (:mod:`howdah.agent.fencer` is the process).

The agent publishes its lease deadline (CLOCK_MONOTONIC seconds) to a small
file right after each renewal and ``none`` once it holds no lease; the fence
process stops postgres whenever it runs as a primary without a deadline in
the future.  The agent keeps the fence running (``Fence.ensure`` each cycle)
and does not lead while it cannot.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from howdah.agent import fencer

log = logging.getLogger("howdah.fence")


class LeaseFile:
    """Publish or clear the lease deadline, atomically (write and rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: float | None = -1.0
        self.boot = fencer.boot_id()

    def adopt(self) -> float | None:
        """At agent start: keep what the previous agent proved.  A deadline it
        published (this boot) stays armed until this agent renews or drops the
        lease; anything else means no lease, so a primary left running stops."""
        deadline, _ = fencer.read_lease(str(self.path), self.boot)
        kept = deadline if deadline > time.monotonic() else None
        self._last = -1.0
        self.publish(kept)
        return kept

    def publish(self, deadline: float | None) -> None:
        if deadline == self._last:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        text = "none" if deadline is None else repr(float(deadline))
        try:
            with open(tmp, "w") as f:
                f.write(f"{text} {os.getpid()} {self.boot}\n")
                f.flush()
            os.replace(tmp, self.path)
            self._last = deadline
        except OSError as exc:
            log.error("cannot write the lease file %s: %s", self.path, exc)


def spawn(lease: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start the fence in a session of its own, so it outlives a hung agent;
    -S -I: no site-packages, no environment, only the standard library."""
    return subprocess.Popen(
        [sys.executable, "-S", "-I", fencer.__file__, str(lease), str(data_dir), str(os.getpid())],
        stdin=subprocess.DEVNULL, start_new_session=True)


class Fence:
    """Keeps one fence process running for this agent."""

    def __init__(self, lease: Path, data_dir: Path,
                 starter: Callable[[Path, Path], "subprocess.Popen[bytes]"] = spawn) -> None:
        self.lease, self.data_dir, self.starter = lease, data_dir, starter
        self.proc: subprocess.Popen[bytes] | None = None
        self.failing = False

    def ensure(self) -> bool:
        """True when a fence runs (started again here if it had died)."""
        if self.proc is not None:
            code = self.proc.poll()
            if code is None:
                return True
            log.error("the fence process exited (code %s): starting it again", code)
            self.proc = None
        try:
            self.proc = self.starter(self.lease, self.data_dir)
        except OSError as exc:
            if not self.failing:
                log.error("cannot start the fence process: %s; not leading without it", exc)
            self.failing = True
            return False
        self.failing = False
        return True

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
