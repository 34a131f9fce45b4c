"""The fence process: stops a primary that has no proof of a lease.

Run by the agent (``howdah.agent.fence.Fence``) as a script of its own,
``python -S -I fencer.py LEASE_FILE DATA_DIR AGENT_PID``, in a session of its
own so it outlives a hung agent.  It imports nothing but os, sys, time and
signal (about 9 MB of RSS instead of the agent's 40), and reads the lease
file ten times a second.

The file holds ``DEADLINE AGENT_PID BOOT_ID``: the agent's lease deadline in
CLOCK_MONOTONIC seconds (shared by every process on the host until it
reboots, hence the boot id), written right after each renewal, or ``none``
when this node holds no lease.  The fence fails closed: a deadline that has
passed, ``none``, a missing or unreadable file and a file written before the
host rebooted all mean "no lease", and a postgres running as a primary then
is shut down at once (SIGQUIT: immediate shutdown).  Whoever the agent is
(hung, stopped, dead, or just restarted and still reading the DCS), a primary
never outlives the lease that allowed it.  This keeps DESIGN invariant 1 true
when the agent itself cannot act.
"""
import os
import signal
import sys
import time

POLL = 0.1
EXPIRED = float("-inf")


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "-"


def read_lease(path: str, boot: "str | None" = None) -> "tuple[float, int | None]":
    """(deadline, agent pid); EXPIRED whenever the file proves no lease."""
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        return EXPIRED, None
    pid = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
    if len(words) > 2 and words[2] != (boot or boot_id()):
        return EXPIRED, pid  # written before a reboot: that clock is gone
    try:
        deadline = float(words[0])
    except (ValueError, IndexError):
        return EXPIRED, pid  # "none", or not ours
    return (deadline if deadline == deadline else EXPIRED), pid  # NaN is no proof


def read_deadline(path: str) -> "float | None":
    """The published deadline, None when there is none (kept for callers)."""
    deadline, _ = read_lease(path)
    return None if deadline == EXPIRED else deadline


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
    deadline, _ = read_lease(lease)
    if now < deadline:
        return False
    pid = postmaster(data_dir)
    if pid is None or not is_primary(data_dir):
        return False
    why = "no lease is held" if deadline == EXPIRED else \
        f"the lease ran out {now - deadline:.1f}s ago"
    say(f"{why} and postgres runs as a primary: stopping it (pid {pid}) now")
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


def done(lease: str, data_dir: str, agent_pid: int) -> bool:
    """Nothing left for this fence to guard."""
    _, writer = read_lease(lease)
    if writer is not None and writer != agent_pid and alive(writer):
        return True  # a newer agent writes the file: it runs a fence of its own
    if alive(agent_pid):
        return False
    return postmaster(data_dir) is None or not is_primary(data_dir)


def run(lease: str, data_dir: str, agent_pid: int) -> int:
    while True:
        try:
            fence_once(lease, data_dir, time.monotonic())
            if done(lease, data_dir, agent_pid):
                return 0
        except Exception as exc:  # noqa: BLE001 - never die of a surprise; retry
            say(f"check failed: {exc!r}")
        time.sleep(POLL)


def main(argv: "list[str]") -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        sys.stderr.write("usage: python -S -I fencer.py LEASE_FILE DATA_DIR AGENT_PID\n")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return run(argv[0], argv[1], int(argv[2]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
