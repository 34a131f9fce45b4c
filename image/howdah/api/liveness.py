"""Is the postmaster a snapshot names still alive?  Answered per request.

The HA loop publishes a snapshot every loop_wait seconds; a postmaster killed in
between must not keep answering health checks as "running".  The responder asks
:class:`ProcessWatch` on every check: a pidfd (Linux 5.3+) of the postmaster,
polled without blocking (about a microsecond; it turns readable the moment the
process exits, zombie or not, and can never name a recycled pid).  Without pidfd
support it falls back to kill(pid, 0) plus the /proc state letter.
"""
from __future__ import annotations

import os
import select
from typing import Optional


def _proc_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: trust the snapshot
    state = raw[raw.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X", b"x")


class ProcessWatch:
    """Tracks one pid at a time (the current snapshot's postmaster).
    Used from the API's event loop thread only."""

    def __init__(self) -> None:
        self._pid: Optional[int] = None
        self._fd: Optional[int] = None
        self._poll: Optional["select.poll"] = None
        self._dead = False

    def alive(self, pid: int) -> bool:
        if pid != self._pid:
            self._watch(pid)
        if self._dead:
            return False
        if self._poll is None:
            return _proc_alive(pid)
        if self._poll.poll(0):
            self._dead = True
            return False
        return True

    def _watch(self, pid: int) -> None:
        self.close()
        self._pid = pid
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None:
            return
        try:
            fd = pidfd_open(pid)
        except ProcessLookupError:
            self._dead = True
            return
        except OSError:
            return  # no pidfd support (old kernel, seccomp): fall back
        if not _proc_alive(pid):  # a zombie already
            os.close(fd)
            self._dead = True
            return
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        self._fd, self._poll = fd, poller

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._poll, self._pid, self._dead = None, None, None, False
