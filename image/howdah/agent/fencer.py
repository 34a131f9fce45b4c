"""The fence process: stops a primary whose lease ran out while its agent did not act.

Run by the agent (``howdah.agent.fence.spawn``) as a script of its own,
``python -S -I fencer.py LEASE_FILE DATA_DIR AGENT_PID``, in a session of its
own so it outlives a hung agent.  It imports nothing but os, sys, time and
signal (about 9 MB of RSS instead of the agent's 40), and reads the lease
file ten times a second.  The file holds the agent's lease deadline in
CLOCK_MONOTONIC seconds (shared by every process on the host) and its pid,
or ``none`` when this node is not the leader.  When the deadline has passed
and postgres still runs as a primary, the agent neither renewed nor demoted:
it is hung, stopped or dead, so the fence shuts postgres down at once
(SIGQUIT: immediate shutdown) before another node's lease can begin.  This
keeps DESIGN invariant 1 true when the agent itself cannot act.
"""
import os
import signal
import sys
import time

POLL = 0.1


def read_deadline(path: str) -> "float | None":
    try:
        with open(path) as f:
            word = f.read().split(None, 1)[0]
        return float(word)
    except (OSError, ValueError, IndexError):
        return None  # no file, "none", or a torn write: nothing to enforce


def postmaster(data_dir: str) -> "int | None":
    """PID of a live postmaster serving data_dir, else None."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            pid = int(f.readline().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:  # a recycled pid is some other process: a postmaster runs in its data directory
        if os.path.realpath(f"/proc/{pid}/cwd") == os.path.realpath(data_dir):
            return pid
    except OSError:
        pass
    return None


def is_primary(data_dir: str) -> bool:
    return not os.path.exists(os.path.join(data_dir, "standby.signal")) and \
        not os.path.exists(os.path.join(data_dir, "recovery.signal"))


def say(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    sys.stderr.write(f"{stamp} CRITICAL: fence: {message}\n")
    sys.stderr.flush()


def fence_once(lease: str, data_dir: str, now: float) -> bool:
    """One check; True when postgres was stopped."""
    deadline = read_deadline(lease)
    if deadline is None or now < deadline:
        return False
    pid = postmaster(data_dir)
    if pid is None or not is_primary(data_dir):
        return False
    say(f"lease ran out {now - deadline:.1f}s ago and the agent did not demote: "
        f"stopping postgres (pid {pid}) now")
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return False
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def run(lease: str, data_dir: str, agent_pid: int) -> int:
    while True:
        fence_once(lease, data_dir, time.monotonic())
        if not alive(agent_pid) and (read_deadline(lease) is None or postmaster(data_dir) is None):
            return 0  # nothing left to guard
        time.sleep(POLL)


def main(argv: "list[str]") -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        sys.stderr.write("usage: python -S -I fencer.py LEASE_FILE DATA_DIR AGENT_PID\n")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return run(argv[0], argv[1], int(argv[2]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
