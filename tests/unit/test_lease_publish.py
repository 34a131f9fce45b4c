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
