"""The agent's side of the fence (:mod:`howdah.agent.fencer` is the process).

The agent publishes its lease deadline (CLOCK_MONOTONIC seconds) to a small
file after each renewal and ``none`` whenever it is not the leader; the fence
process stops postgres when a published deadline passes with postgres still
a primary.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from howdah.agent import fencer

log = logging.getLogger("howdah.fence")


class LeaseFile:
    """Publish or clear the lease deadline, atomically (write and rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: float | None = -1.0

    def publish(self, deadline: float | None) -> None:
        if deadline == self._last:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        text = "none" if deadline is None else repr(float(deadline))
        try:
            tmp.write_text(f"{text} {os.getpid()}\n")
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
