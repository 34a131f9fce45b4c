"""The watchdog section (issue 10 item 9) against stand-in devices the test owns:
a regular file (not a watchdog: it does not answer the ioctls, as the kernel
says for any non-device) and the same file behind an emulated watchdog ioctl
layer, to check the protocol: timeout set to ttl - safety_margin, a keepalive
write after each renewal, the magic close ('V') when disarmed."""
from __future__ import annotations

import struct
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from howdah.agent import watchdog as wd
from howdah.agent.actions import Executor
from howdah.agent.ha import Agent
from howdah.agent.state import Memory
from howdah.core.settings import Settings
from howdah.core.transitions import Decision, Goal, Reason


class FakeWatchdogIoctl:
    """Answers the watchdog ioctls as a driver would; the device itself is a file."""

    def __init__(self, options: int = wd.WDIOF_SETTIMEOUT | wd.WDIOF_MAGICCLOSE,
                 rounds_to: int | None = None) -> None:
        self.options, self.rounds_to = options, rounds_to
        self.timeout = 60
        self.calls: list[int] = []

    def __call__(self, fd: int, request: int, arg: bytes) -> bytes:
        self.calls.append(request)
        if request == wd.WDIOC_GETSUPPORT:
            return struct.pack("II32s", self.options, 0, b"stand-in")
        if request == wd.WDIOC_SETTIMEOUT:
            self.timeout = self.rounds_to or struct.unpack("i", arg)[0]
            return struct.pack("i", self.timeout)
        if request == wd.WDIOC_GETTIMEOUT:
            return struct.pack("i", self.timeout)
        raise OSError(25, "Inappropriate ioctl for device")


def device(tmp_path: Path) -> Path:
    path = tmp_path / "watchdog"
    path.write_bytes(b"")
    return path


def test_parse_defaults_and_one_line_errors() -> None:
    assert wd.WatchdogConfig.parse(None) == wd.WatchdogConfig("automatic", "/dev/watchdog", 5)
    assert wd.WatchdogConfig.parse({"mode": "required", "safety_margin": -1}).timeout(30) == 15
    assert wd.WatchdogConfig.parse({"mode": False}).mode == "off"
    for raw, field in (({"mode": "sometimes"}, "watchdog.mode"),
                       ({"safety_margin": "x"}, "watchdog.safety_margin"),
                       ({"device": 3}, "watchdog.device"), ("on", "watchdog")):
        with pytest.raises(wd.WatchdogConfigError) as err:
            wd.WatchdogConfig.parse(raw)
        assert err.value.field == field and "\n" not in str(err.value)


def test_a_regular_file_is_not_a_watchdog(tmp_path: Path) -> None:
    path = device(tmp_path)
    for mode in ("required", "automatic"):
        dog = wd.Watchdog(wd.WatchdogConfig(mode, str(path), 5))  # the real ioctl
        assert not dog.activate(30, 10)
        assert not dog.active and "not a watchdog device" in str(dog.error)
    assert path.read_bytes() == b"", "nothing may be written to a device that is not a watchdog"
    assert not wd.Watchdog(wd.WatchdogConfig("off", str(path), 5)).activate(30, 10)
    missing = wd.Watchdog(wd.WatchdogConfig("required", str(tmp_path / "none"), 5))
    assert not missing.activate(30, 10) and "cannot open" in str(missing.error)


def test_the_linux_watchdog_protocol(tmp_path: Path) -> None:
    path = device(tmp_path)
    ioctl = FakeWatchdogIoctl()
    dog = wd.Watchdog(wd.WatchdogConfig("required", str(path), 5), ioctl)
    assert dog.activate(30, 10)
    assert dog.timeout == 25 and ioctl.timeout == 25  # ttl - safety_margin
    assert dog.activate(30, 10) and ioctl.calls.count(wd.WDIOC_SETTIMEOUT) == 1
    dog.keepalive()
    dog.keepalive()
    dog.disable()
    assert path.read_bytes() == b"11V"  # a write per keepalive, then the magic close
    dog.keepalive()
    assert path.read_bytes() == b"11V" and not dog.active


def test_an_unsafe_timeout_is_refused_and_disarmed(tmp_path: Path) -> None:
    path = device(tmp_path)
    dog = wd.Watchdog(wd.WatchdogConfig("required", str(path), 5), FakeWatchdogIoctl(rounds_to=40))
    assert not dog.activate(30, 10) and "timeout is 40s" in str(dog.error)
    assert path.read_bytes() == b"V" and not dog.active
    short = wd.Watchdog(wd.WatchdogConfig("required", str(path), 25), FakeWatchdogIoctl())
    assert not short.activate(30, 10) and "loop_wait" in str(short.error)


def fake_agent(mode: str, path: Path, ioctl: wd.Ioctl = wd._ioctl) -> SimpleNamespace:
    return SimpleNamespace(settings=Settings(ttl=30, loop_wait=10, retry_timeout=10),
                           watchdog=wd.Watchdog(wd.WatchdogConfig(mode, str(path), 5), ioctl))


def test_required_refuses_to_lead_without_a_watchdog_and_automatic_leads(tmp_path: Path) -> None:
    path = device(tmp_path)
    assert not Agent._arm_watchdog(fake_agent("required", path))  # type: ignore[arg-type]
    assert Agent._arm_watchdog(fake_agent("automatic", path))  # type: ignore[arg-type]
    assert Agent._arm_watchdog(fake_agent("required", path, FakeWatchdogIoctl()))  # type: ignore[arg-type]


class Dcs:
    def __init__(self) -> None:
        self.released = False

    def acquire_leader(self, ttl: int) -> bool:
        return True

    def release_leader(self) -> bool:
        self.released = True
        return True


def test_a_won_race_is_given_back_when_the_watchdog_cannot_be_armed() -> None:
    dcs, mem = Dcs(), Memory()
    ex = Executor(dcs, None, None, mem, None, lambda: 5.0,  # type: ignore[arg-type]
                  threading.Event(), None)  # type: ignore[arg-type]
    ex.on_acquired = lambda: False
    ex.settings = Settings()
    assert not ex.acquire_lock(Decision(Goal.RACE, Reason.HEALTHIEST, ""))
    assert dcs.released and mem.last_renew is None


def test_paused_the_watchdog_is_disarmed_and_leading_allowed(tmp_path: Path) -> None:
    path = device(tmp_path)
    agent = fake_agent("required", path, FakeWatchdogIoctl())
    assert Agent._arm_watchdog(agent)  # type: ignore[arg-type]
    assert agent.watchdog.active
    agent.settings = Settings(ttl=30, loop_wait=10, retry_timeout=10, pause=True)
    assert Agent._arm_watchdog(agent)  # type: ignore[arg-type]
    assert not agent.watchdog.active and path.read_bytes() == b"V"
