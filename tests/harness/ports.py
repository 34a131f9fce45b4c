"""Free TCP ports on 127.0.0.1 that parallel test runs on one host never share.

A port is handed out only when (a) nothing can be bound on it right now and
(b) this process holds an exclusive flock on <LOCK_DIR>/<port>.lock.
The lock lives as long as the Reservation (or the process), so two pytest
workers, a benchmark and the compose tests running side by side cannot pick
the same port between "checked free" and "server bound it". Ports come from
below the kernel's ephemeral range so outgoing connections do not steal them.
"""
from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
from pathlib import Path

def _lock_dir() -> Path:
    """/run/lock/howdah-ports (outside /tmp, so a `rm -rf /tmp/howdah-harness-*`
    cleanup cannot drop the locks of a running cluster), else /tmp/.howdah-ports."""
    if "HARNESS_PORT_LOCK_DIR" in os.environ:
        return Path(os.environ["HARNESS_PORT_LOCK_DIR"])
    if os.access("/run/lock", os.W_OK):
        return Path("/run/lock/howdah-ports")
    return Path("/tmp/.howdah-ports")


LOCK_DIR = _lock_dir()
PORT_LOW, PORT_HIGH = 20000, 32000


def _bindable(port: int) -> bool:
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


class Reservation:
    """A set of ports held for one cluster; release() lets others use them."""

    def __init__(self) -> None:
        self._held: dict[int, int] = {}  # port -> fd of its lock file

    @property
    def ports(self) -> list[int]:
        return list(self._held)

    def take(self) -> int:
        """Reserve one more free port."""
        LOCK_DIR.mkdir(mode=0o777, parents=True, exist_ok=True)
        try:
            os.chmod(LOCK_DIR, 0o1777)
        except PermissionError:
            pass
        rng = random.Random()
        for _ in range(2000):
            port = rng.randrange(PORT_LOW, PORT_HIGH)
            if port in self._held:
                continue
            fd = self._lock(port)
            if fd is None:
                continue
            if _bindable(port):
                self._held[port] = fd
                return port
            os.close(fd)
        raise RuntimeError("no free port found in %d-%d" % (PORT_LOW, PORT_HIGH))

    def take_many(self, count: int) -> list[int]:
        return [self.take() for _ in range(count)]

    @staticmethod
    def _lock(port: int) -> int | None:
        path = LOCK_DIR / f"{port}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise BlockingIOError(errno.EAGAIN, "lock file replaced meanwhile")
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.ENOENT):
                return None
            raise
        return fd

    def release(self) -> None:
        for fd in self._held.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._held.clear()
