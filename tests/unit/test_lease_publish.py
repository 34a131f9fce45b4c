"""The fence's deadline is published right after a renewal, not at the end of
the cycle (issue 10 item 6): a cycle that renews and then blocks (a slow
promote, a hung DCS write) is fenced on the new deadline, not the old one."""
from __future__ import annotations

import threading
from typing import Any

from howdah.agent.actions import Executor
from howdah.agent.state import Memory
from howdah.core.settings import Settings
from howdah.core.transitions import Decision, Goal, Reason


class Dcs:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def renew_leader(self, ttl: int) -> bool:
        self.calls.append("renew")
        return True

    def acquire_leader(self, ttl: int) -> bool:
        self.calls.append("acquire")
        return True


def test_renew_and_acquire_publish_at_once() -> None:
    dcs, mem = Dcs(), Memory()
    ex = Executor(dcs, None, None, mem, None, lambda: 100.0,  # type: ignore[arg-type]
                  threading.Event(), None)  # type: ignore[arg-type]
    seen: list[Any] = []
    ex.on_renew = lambda: seen.append((list(dcs.calls), mem.last_renew))
    ex.settings = Settings()
    d = Decision(Goal.LEAD, Reason.HEALTHY_LEADER, "")
    assert ex.renew_lock(d)
    assert ex.acquire_lock(d)
    assert seen == [(["renew"], 100.0), (["renew", "acquire"], 100.0)]


class Pg:
    def __init__(self, stops: bool) -> None:
        self.stops, self.calls = stops, []  # type: ignore[var-annotated]

    def stop(self, mode: str, timeout: float, abort_after: float = 30.0) -> bool:
        self.calls.append(mode)
        return self.stops


class ReleaseDcs:
    def __init__(self) -> None:
        self.released = False

    def release_leader(self) -> bool:
        self.released = True
        return True


def test_a_crashed_primary_is_stopped_before_the_lock_is_released() -> None:
    """Issue 10 item 8: recovery outlasting primary_start_timeout left its
    postmaster running when the lock went, to open read-write later."""
    from howdah.core.transitions import Action
    d = Decision(Goal.RELEASE_AFTER_CRASH, Reason.START_TIMEOUT, "")
    assert d.actions == (Action.STOP_POSTGRES, Action.RELEASE_LOCK)
    for stops in (True, False):
        pg, dcs, mem = Pg(stops), ReleaseDcs(), Memory()
        ex = Executor(dcs, pg, None, mem, None, lambda: 1.0,  # type: ignore[arg-type]
                      threading.Event(), None)  # type: ignore[arg-type]
        ex.run(d, Settings())
        assert pg.calls == ["immediate"]
        assert dcs.released is stops, "the lock must stay while postgres still runs"
