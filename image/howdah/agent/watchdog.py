"""The `watchdog` section: a Linux watchdog device (softdog or hardware) that
resets the host when the leader's agent stops feeding it.

    watchdog:
      mode: automatic      # off | automatic (use it when there is one) | required
      device: /dev/watchdog
      safety_margin: 5     # seconds before the lock expires; -1: half the ttl

The device is opened only when this node takes or holds the leader lock
(opening arms it), its timeout is set to ttl - safety_margin, and it is fed
right after each renewal of the lock, so a hung leader is reset before its
lock can expire and another node promote.  When the node stops leading it is
disarmed by the magic close (a 'V' written before closing).  A path that does
not answer the watchdog ioctls (a regular file, a FIFO) is not a watchdog:
`required` then refuses to lead, `automatic` leads without one.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
from dataclasses import dataclass
from typing import Any, Callable, Mapping

log = logging.getLogger("howdah.watchdog")

_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("W") << 8) | nr


WDIOC_GETSUPPORT = _ioc(_IOC_READ, 0, 40)   # struct watchdog_info
WDIOC_SETTIMEOUT = _ioc(_IOC_READ | _IOC_WRITE, 6, 4)
WDIOC_GETTIMEOUT = _ioc(_IOC_READ, 7, 4)
WDIOF_SETTIMEOUT = 0x0080
WDIOF_MAGICCLOSE = 0x0100

MODES = {"off": "off", "false": "off", "disable": "off", "disabled": "off",
         "automatic": "automatic", "auto": "automatic", "true": "automatic",
         "required": "required", "require": "required"}


class WatchdogConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class WatchdogConfig:
    mode: str = "automatic"
    device: str = "/dev/watchdog"
    safety_margin: int = 5

    @classmethod
    def parse(cls, raw: Any) -> "WatchdogConfig":
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise WatchdogConfigError("watchdog", "must be a mapping with mode, device, "
                                      "safety_margin")
        mode_raw = raw.get("mode", "automatic")
        mode = MODES.get(str(mode_raw).strip().lower())
        if mode is None:
            raise WatchdogConfigError("watchdog.mode", f"must be off, automatic or required, "
                                      f"got {mode_raw!r}")
        device = raw.get("device", "/dev/watchdog")
        if not isinstance(device, str) or not device:
            raise WatchdogConfigError("watchdog.device", f"must be a path, got {device!r}")
        margin = raw.get("safety_margin", 5)
        if isinstance(margin, bool) or not isinstance(margin, (int, str)) or \
                not str(margin).lstrip("-").isdigit() or int(margin) < -1:
            raise WatchdogConfigError("watchdog.safety_margin", f"must be an integer >= 0 "
                                      f"(or -1 for half the ttl), got {margin!r}")
        return cls(mode, device, int(margin))

    def timeout(self, ttl: int) -> int:
        return ttl // 2 if self.safety_margin == -1 else ttl - self.safety_margin


Ioctl = Callable[[int, int, bytes], bytes]


def _ioctl(fd: int, request: int, arg: bytes) -> bytes:
    return bytes(fcntl.ioctl(fd, request, arg))


class Watchdog:
    def __init__(self, cfg: WatchdogConfig, ioctl: Ioctl = _ioctl) -> None:
        self.cfg, self.ioctl = cfg, ioctl
        self.fd: int | None = None
        self.timeout: int | None = None
        self.error: str | None = None
        self._said: str | None = None

    @property
    def active(self) -> bool:
        return self.fd is not None

    def activate(self, ttl: int, loop_wait: int) -> bool:
        """Arm the device for this leader; True when it is armed with a safe
        timeout.  With mode off, or automatic and no usable device, False
        and nothing is armed (the caller decides whether that may lead)."""
        if self.cfg.mode == "off":
            return False
        if self.fd is not None:
            return True
        want = self.cfg.timeout(ttl)
        problem = self._open_and_set(want, loop_wait)
        if problem is None:
            self.error = None
            log.info("watchdog %s armed: the host resets %ss after the last renewal",
                     self.cfg.device, self.timeout)
            return True
        self.error = problem
        if self._said != problem:
            level = logging.ERROR if self.cfg.mode == "required" else logging.WARNING
            log.log(level, "watchdog %s: %s%s", self.cfg.device, problem,
                    "; not leading without it (mode required)" if self.cfg.mode == "required"
                    else "; leading without a watchdog (mode automatic)")
            self._said = problem
        return False

    def _open_and_set(self, want: int, loop_wait: int) -> str | None:
        if want <= loop_wait:
            return (f"a timeout of {want}s (ttl - safety_margin) is not above loop_wait "
                    f"({loop_wait}s): it would fire between renewals")
        try:
            fd = os.open(self.cfg.device, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            return f"cannot open it: {exc.strerror}"
        try:
            info = self.ioctl(fd, WDIOC_GETSUPPORT, bytes(40))
        except OSError as exc:
            os.close(fd)  # not a watchdog: nothing was armed, nothing to disarm
            if exc.errno in (errno.ENOTTY, errno.EINVAL):
                return "not a watchdog device (it does not answer the watchdog ioctls)"
            return f"cannot query it: {exc.strerror}"
        options = struct.unpack_from("I", info)[0]
        self.fd = fd
        try:
            if options & WDIOF_SETTIMEOUT:
                self.ioctl(fd, WDIOC_SETTIMEOUT, struct.pack("i", want))
            actual = struct.unpack("i", self.ioctl(fd, WDIOC_GETTIMEOUT, bytes(4)))[0]
        except OSError as exc:
            self.disable()
            return f"cannot set its timeout: {exc.strerror}"
        self.timeout = actual
        if actual > want or actual <= loop_wait:
            self.disable()
            return (f"its timeout is {actual}s, not within loop_wait ({loop_wait}s) and "
                    f"ttl - safety_margin ({want}s)")
        if not options & WDIOF_MAGICCLOSE:
            log.warning("watchdog %s cannot be disarmed (no magic close): the host resets "
                        "if this agent stops", self.cfg.device)
        return None

    def keepalive(self) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, b"1")
        except OSError as exc:
            log.error("watchdog %s: keepalive failed: %s", self.cfg.device, exc.strerror)

    def disable(self) -> None:
        """Magic close: 'V' then close, so the driver disarms the timer."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.write(fd, b"V")
        except OSError as exc:
            log.error("watchdog %s: could not disarm it: %s", self.cfg.device, exc.strerror)
        finally:
            os.close(fd)
        log.info("watchdog %s disarmed", self.cfg.device)
