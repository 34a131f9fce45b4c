"""Issue 10 item 7: every DCS and PostgreSQL call on the HA path is bounded by the
time left on the lease, so a leader with a dead etcd host among several learns in
time that it must demote (each host was tried for up to 5 s in turn), and one whose
postgres hangs neither blocks its loop nor renews a lease it cannot back."""
from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from howdah.agent.ha import Agent
from howdah.core.decide import decide
from howdah.core.models import ClusterView, DataState, Leader, LocalState, Member, PgStatus
from howdah.core.settings import Settings
from howdah.core.transitions import TRANSITIONS, Action, Goal
from howdah.pg import query


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


# ---- PostgreSQL calls --------------------------------------------------------
def test_a_server_that_never_answers_cannot_hold_a_bounded_call() -> None:
    """A listening socket nobody serves stands in for a frozen postmaster: the kernel
    completes the handshake and then nothing answers.  A bounded call ends in time
    and says it timed out; without a bound the connection attempt still ends (3 s)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    db = query.LocalDb({"host": "127.0.0.1", "port": srv.getsockname()[1], "user": "postgres",
                        "dbname": "postgres"})
    try:
        query.bound_thread(lambda: 0.2)
        began = time.monotonic()
        with pytest.raises(query.Timeout):
            db.execute("SELECT 1")
        assert db.timed_out and time.monotonic() - began < 2.0
        assert db.snapshot() is None and db.timed_out
        query.bound_thread(lambda: -5.0)  # past the bound: the floor, not an instant failure
        began = time.monotonic()
        with pytest.raises(query.Timeout):
            db.execute("SELECT 1")
        assert time.monotonic() - began >= query.TIMEOUT_FLOOR - 0.05
        query.bound_thread(None)
        began = time.monotonic()
        with pytest.raises(query.Timeout):
            db.execute("SELECT 1")
        assert time.monotonic() - began < query.CONNECT_TIMEOUT + 2.0
    finally:
        query.bound_thread(None)
        db.close()
        srv.close()


def pg_agent(last_renew: float | None, now: float) -> SimpleNamespace:
    return SimpleNamespace(settings=Settings(ttl=30, loop_wait=10, retry_timeout=10),
                           mem=SimpleNamespace(last_renew=last_renew), clock=lambda: now)


def test_postgres_calls_of_a_leader_end_with_its_lease() -> None:
    assert Agent.pg_budget(pg_agent(100.0, 110.0)) == 5.0  # type: ignore[arg-type]
    assert Agent.pg_budget(pg_agent(100.0, 118.0)) == 2.0  # type: ignore[arg-type]
    assert Agent.pg_budget(pg_agent(None, 118.0)) is None  # type: ignore[arg-type]


def test_a_leader_whose_postgres_does_not_answer_renews_nothing_then_stops_it() -> None:
    s = Settings(ttl=30, loop_wait=10, retry_timeout=10)
    view = ClusterView(initialize="42", leader=Leader("a", 5), members=(Member(name="a"),))
    hung = PgStatus(data=DataState.PRIMARY, running=False, sysid="42")

    def goal(renewed: float | None, now: float, unanswered: bool = True) -> Goal:
        me = LocalState(name="a", pg=hung, last_renew=renewed, was_running=True,
                        unanswered=unanswered)
        return decide(view, me, (), s, now).goal

    early = goal(100.0, 110.0)
    assert early == Goal.KEEP_WAITING and Action.RENEW_LOCK not in TRANSITIONS[early]
    for renewed in (100.0, None):  # at the demotion point, or with no lease at all
        late = goal(renewed, 120.0)
        assert late == Goal.RELEASE_AFTER_CRASH
        assert TRANSITIONS[late] == (Action.STOP_POSTGRES, Action.RELEASE_LOCK)
    # refused or starting up (crash recovery) is no hang: restarted under the lock as before
    assert goal(100.0, 110.0, unanswered=False) == Goal.RESTART_PRIMARY
