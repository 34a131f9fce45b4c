"""The fence: a process apart from the agent that stops a primary whose lease ran out.

The agent writes its lease deadline (CLOCK_MONOTONIC seconds, which every
process on the host shares) to a small file after each renewal, and clears
it whenever it is not the leader.  The fence reads that file ten times a
second.  If the deadline has passed and postgres still runs as a primary,
the agent did not renew and did not demote — it is hung, stopped or dead —
so the fence shuts postgres down at once (SIGQUIT: immediate shutdown),
before another node's lease can begin.  This keeps DESIGN invariant 1 true
when the agent itself cannot act.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("howdah.fence")
POLL = 0.1


class LeaseFile:
    """The agent's side: publish or clear the lease deadline, atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: float | None = -1.0

    def publish(self, deadline: float | None) -> None:
        if deadline == self._last:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"deadline": deadline, "pid": os.getpid()}))
            os.replace(tmp, self.path)
            self._last = deadline
        except OSError as exc:
            log.error("cannot write the lease file %s: %s", self.path, exc)


def read_deadline(path: Path) -> float | None:
    try:
        value = json.loads(path.read_text()).get("deadline")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def postmaster(data_dir: Path) -> int | None:
    from howdah.pg.ctl import PgPaths, postmaster_pid
    return postmaster_pid(PgPaths(data_dir, Path("/")))


def is_primary(data_dir: Path) -> bool:
    """A running postgres without standby.signal or recovery.signal serves writes."""
    return not (data_dir / "standby.signal").exists() and \
        not (data_dir / "recovery.signal").exists()


def fence_once(lease: Path, data_dir: Path, now: float) -> bool:
    """One check; True when postgres was stopped."""
    deadline = read_deadline(lease)
    if deadline is None or now < deadline:
        return False
    pid = postmaster(data_dir)
    if pid is None or not is_primary(data_dir):
        return False
    log.critical("lease ran out %.1fs ago and the agent did not demote: stopping postgres "
                 "(pid %s) now", now - deadline, pid)
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return False
    return True


def run(lease: Path, data_dir: Path, agent_pid: int) -> int:
    while True:
        fence_once(lease, data_dir, time.monotonic())
        agent_gone = not _alive(agent_pid)
        if agent_gone and (read_deadline(lease) is None or postmaster(data_dir) is None):
            return 0  # nothing left to guard
        time.sleep(POLL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def spawn(lease: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start the fence as a process of its own session, so it outlives a hung agent."""
    return subprocess.Popen(
        [sys.executable, "-m", "howdah.agent.fence", str(lease), str(data_dir), str(os.getpid())],
        stdin=subprocess.DEVNULL, start_new_session=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: fence: %(message)s")
    if len(sys.argv) != 4:
        print("usage: python -m howdah.agent.fence LEASE_FILE DATA_DIR AGENT_PID", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return run(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))


if __name__ == "__main__":
    sys.exit(main())
