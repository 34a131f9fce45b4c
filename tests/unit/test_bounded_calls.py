"""Issue 10 item 7: every DCS call on the HA path is bounded by the time left
on the lease, so a leader with a dead etcd host among several learns in time
that it must demote (each host was tried for up to 5 s in turn)."""
from __future__ import annotations

from types import SimpleNamespace

from howdah.agent.ha import Agent
from howdah.core.settings import Settings


class Dcs:
    where = "10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379"

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def set_timeout(self, t: float) -> None:
        self.timeouts.append(t)


def agent(last_renew: float | None, now: float) -> SimpleNamespace:
    s = Settings(ttl=30, loop_wait=10, retry_timeout=10)
    return SimpleNamespace(settings=s, mem=SimpleNamespace(last_renew=last_renew), dcs=Dcs(),
                           clock=lambda: now, _dcs_timeout=5.0,
                           failsafe=SimpleNamespace(leading_until=None),
                           _request_timeout=Agent._request_timeout)


def test_dcs_requests_share_the_time_left_before_the_demotion_point() -> None:
    a = agent(last_renew=100.0, now=110.0)  # 10 s left to the demotion point (loop_wait+retry)
    Agent.bound_dcs(a)  # type: ignore[arg-type]
    assert a.dcs.timeouts and a.dcs.timeouts[-1] * 2 * 3 <= 10.0 + 1e-9
    late = agent(last_renew=100.0, now=119.9)
    Agent.bound_dcs(late)  # type: ignore[arg-type]
    assert late.dcs.timeouts == [0.2]
    free = agent(last_renew=None, now=110.0)  # no lease: the configured timeout
    Agent.bound_dcs(free)  # type: ignore[arg-type]
    assert free.dcs.timeouts == []
