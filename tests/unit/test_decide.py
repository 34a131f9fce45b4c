"""decide() as tables of cluster situations -> expected goal and reason. No mocks."""
from __future__ import annotations

import ast
import inspect
from dataclasses import replace

import pytest

from howdah.core import decide as decide_mod
from howdah.core.decide import decide
from howdah.core.models import (
    ClusterView, DataState, Leader, LocalState, Member, PeerStatus, PgStatus, Task, TaskKind,
)
from howdah.core.settings import Settings
from howdah.core.transitions import TRANSITIONS, Action, Goal, Reason

S = Settings(ttl=30, loop_wait=10, retry_timeout=10, maximum_lag_on_failover=1000,
             use_pg_rewind=True)
NOW = 1000.0


def member(name: str, state: str = "running", **tags: object) -> Member:
    return Member(name=name, role="replica", state=state,
                  conn_url=f"postgres://{name}:5432/postgres", api_url=f"http://{name}:8008/patroni",
                  tags=dict(tags))


MEMBERS = (member("a"), member("b"), member("c"))


def view(leader: str | None = "a", init: str | None = "42", optime: int | None = 100,
         members: tuple[Member, ...] = MEMBERS) -> ClusterView:
    return ClusterView(initialize=init, leader=Leader(leader, 5) if leader else None,
                       members=members, optime=optime)


def pg(data: DataState = DataState.REPLICA, running: bool = True, recovery: bool = True,
       wal: int = 100, tl: int = 1, upstream: str | None = "a:5432") -> PgStatus:
    return PgStatus(data=data, running=running, in_recovery=recovery, sysid="42", timeline=tl,
                    wal_position=wal, replayed=wal, upstream_host=upstream)


PRIMARY = pg(DataState.PRIMARY, recovery=False, upstream=None)
STOPPED_PRIMARY = pg(DataState.PRIMARY, running=False, recovery=False, upstream=None)
CRASHED = pg(DataState.CRASHED_PRIMARY, running=False, recovery=False, upstream=None)
EMPTY = PgStatus()


def local(name: str = "b", p: PgStatus = pg(), **kw: object) -> LocalState:
    return LocalState(name=name, pg=p, **kw)  # type: ignore[arg-type]


def peer(name: str, wal: int, tl: int = 1, **tags: object) -> PeerStatus:
    return PeerStatus(name=name, reachable=True, role="replica", running=True, timeline=tl,
                      received=wal, replayed=wal, tags=dict(tags))


DOWN = PeerStatus(name="a", reachable=False)

CASES = [
    # (id, view, local, peers, settings, now, goal, reason)
    ("empty cluster bootstraps", view(None, None), local(p=EMPTY), (), S, NOW,
     Goal.BOOTSTRAP, Reason.CLUSTER_EMPTY),
    ("bootstrap in progress elsewhere", view("a", ""), local(p=EMPTY), (), S, NOW,
     Goal.WAIT_BOOTSTRAP, Reason.BOOTSTRAP_RUNNING),
    ("abandoned bootstrap is freed", view(None, ""), local(p=EMPTY), (), S, NOW,
     Goal.CLEAR_ABANDONED_BOOTSTRAP, Reason.BOOTSTRAP_ABANDONED),
    ("empty data clones from leader", view(), local(p=EMPTY), (), S, NOW,
     Goal.CREATE_REPLICA, Reason.NO_DATA),
    ("empty data, no leader waits", view(None), local(p=EMPTY), (), S, NOW,
     Goal.WAIT_LEADER, Reason.LEADER_NOT_READY),
    ("foreign data is left alone", view(init="99"), local(), (), S, NOW,
     Goal.SYSID_MISMATCH, Reason.SYSID_MISMATCH),
    ("healthy leader renews", view("b"), local(p=PRIMARY), (), S, NOW,
     Goal.LEAD, Reason.HEALTHY_LEADER),
    ("lock holder running as replica promotes", view("b"), local(), (), S, NOW,
     Goal.PROMOTE_HELD, Reason.HOLD_LOCK_AS_REPLICA),
    ("crashed postgres under leader restarts", view("b"), local(p=CRASHED, crash_since=NOW - 5),
     (), S, NOW, Goal.RESTART_PRIMARY, Reason.PG_CRASHED),
    ("primary_start_timeout 0: a crash fails over to a healthy replica", view("b"),
     local(p=CRASHED, crash_since=NOW), (peer("a", 100), peer("c", 100)),
     replace(S, primary_start_timeout=0), NOW, Goal.RELEASE_AFTER_CRASH, Reason.START_TIMEOUT),
    ("primary_start_timeout 0, no replica may take over: restart", view("b"),
     local(p=CRASHED, crash_since=NOW), (peer("a", 100, nofailover=True), DOWN),
     replace(S, primary_start_timeout=0), NOW, Goal.RESTART_PRIMARY, Reason.PG_CRASHED),
    ("primary_start_timeout 0, replicas too far behind: restart", view("b", optime=10**9),
     local(p=CRASHED, crash_since=NOW), (peer("a", 100),),
     replace(S, primary_start_timeout=0), NOW, Goal.RESTART_PRIMARY, Reason.PG_CRASHED),
    ("crash past primary_start_timeout releases", view("b"),
     local(p=CRASHED, crash_since=NOW - 301), (), S, NOW,
     Goal.RELEASE_AFTER_CRASH, Reason.START_TIMEOUT),
    ("streaming replica stays", view(), local(), (), S, NOW, Goal.REPLICATE, Reason.STREAMING),
    ("replica on wrong upstream follows", view(), local(p=pg(upstream="c:5432")), (), S, NOW,
     Goal.FOLLOW, Reason.WRONG_UPSTREAM),
    ("replicatefrom tag is honoured", view(), local(p=pg(upstream="a:5432"),
     tags={"replicatefrom": "c"}), (), S, NOW, Goal.FOLLOW, Reason.WRONG_UPSTREAM),
    ("stopped replica starts", view(), local(p=pg(running=False)), (), S, NOW,
     Goal.START_REPLICA, Reason.PG_DOWN),
    ("primary without lock demotes", view("a"), local(p=PRIMARY), (), S, NOW,
     Goal.DEMOTE, Reason.LOST_LOCK),
    ("former primary rewinds", view("a"), local(p=STOPPED_PRIMARY), (), S, NOW,
     Goal.REWIND, Reason.FORMER_PRIMARY),
    ("crashed former primary rewinds", view("a"), local(p=CRASHED), (), S, NOW,
     Goal.REWIND, Reason.FORMER_PRIMARY),
    ("former primary without rewind just starts", view("a"), local(p=STOPPED_PRIMARY), (),
     Settings(use_pg_rewind=False), NOW, Goal.START_REPLICA, Reason.PG_DOWN),
    ("failed rewind waits for operator", view("a"), local(p=STOPPED_PRIMARY, rewind_failed=True),
     (), S, NOW, Goal.NEED_OPERATOR, Reason.REWIND_FAILED),
    ("failed rewind re-clones when allowed", view("a"),
     local(p=STOPPED_PRIMARY, rewind_failed=True), (),
     Settings(use_pg_rewind=True, remove_data_directory_on_rewind_failure=True), NOW,
     Goal.REINITIALIZE, Reason.REWIND_FAILED),
    ("no leader, healthiest races", view(None), local(), (DOWN, peer("c", 90)), S, NOW,
     Goal.RACE, Reason.HEALTHIEST),
    ("no leader, equal peer: both race", view(None), local(), (DOWN, peer("c", 100)), S, NOW,
     Goal.RACE, Reason.HEALTHIEST),
    ("no leader, peer ahead: stay", view(None), local(), (DOWN, peer("c", 150)), S, NOW,
     Goal.STAY_BEHIND, Reason.PEER_AHEAD),
    ("no leader, peer ahead but nofailover: race", view(None), local(),
     (peer("c", 150, nofailover=True),), S, NOW, Goal.RACE, Reason.HEALTHIEST),
    ("no leader, equal peer with higher priority wins", view(None), local(),
     (peer("c", 100, failover_priority=5),), S, NOW, Goal.STAY_BEHIND, Reason.PEER_AHEAD),
    ("no leader, higher timeline peer wins", view(None), local(), (peer("c", 50, tl=2),), S, NOW,
     Goal.STAY_BEHIND, Reason.PEER_AHEAD),
    ("no leader, nofailover tag", view(None), local(tags={"nofailover": True}), (), S, NOW,
     Goal.STAY_BEHIND, Reason.NOT_ELIGIBLE),
    ("no leader, failover_priority 0", view(None), local(tags={"failover_priority": 0}), (), S,
     NOW, Goal.STAY_BEHIND, Reason.NOT_ELIGIBLE),
    ("no leader, too far behind", view(None, optime=5000), local(), (), S, NOW,
     Goal.STAY_BEHIND, Reason.LAGGING),
    ("no leader, postgres down: start read-only", view(None), local(p=pg(running=False)), (), S,
     NOW, Goal.START_READONLY, Reason.NO_LEADER),
    ("no leader, old primary keeps racing", view(None), local(p=PRIMARY), (DOWN,), S, NOW,
     Goal.RACE, Reason.HEALTHIEST),
    ("no leader, primary behind a peer demotes", view(None), local(p=PRIMARY),
     (peer("c", 100, tl=2),), S, NOW, Goal.DEMOTE, Reason.PEER_AHEAD),
    ("dcs lost, lease still fresh", view("b"), local(p=PRIMARY, dcs_ok=False, last_renew=NOW - 5),
     (), S, NOW, Goal.KEEP_WAITING, Reason.DCS_RETRYING),
    ("dcs lost past loop_wait + retry_timeout demotes", view("b"),
     local(p=PRIMARY, dcs_ok=False, last_renew=NOW - 20), (), S, NOW,
     Goal.DEMOTE, Reason.DCS_UNREACHABLE),
    ("dcs lost, replica keeps going", view("a"), local(dcs_ok=False), (), S, NOW,
     Goal.KEEP_WAITING, Reason.DCS_RETRYING),
    ("task running under lock renews", view("b"),
     local(task=Task(TaskKind.BOOTSTRAP, NOW)), (), S, NOW, Goal.LEAD_TASK, Reason.TASK_RUNNING),
    ("task running elsewhere waits", view("a"),
     local(task=Task(TaskKind.CREATE_REPLICA, NOW)), (), S, NOW,
     Goal.WAIT_TASK, Reason.TASK_RUNNING),
    ("paused leader keeps the lock only", view("b"), local(p=PRIMARY), (), Settings(pause=True),
     NOW, Goal.PAUSED_LEAD, Reason.PAUSED),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_decide_table(case: tuple) -> None:  # type: ignore[type-arg]
    _, v, loc, peers, settings, now, goal, reason = case
    d = decide(v, loc, peers, settings, now)
    assert (d.goal, d.reason) == (goal, reason), d.detail
    assert d.actions == TRANSITIONS[goal]


def test_every_goal_decide_can_emit_has_a_row() -> None:
    from howdah.core import manual as manual_mod
    source = inspect.getsource(decide_mod) + inspect.getsource(manual_mod)
    emitted = {node.attr for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
               and node.value.id == "G"}
    assert emitted, "decide() must name its goals as G.<goal>"
    for name in emitted:
        assert Goal[name] in TRANSITIONS, f"goal {name} has no row in TRANSITIONS"
    assert set(TRANSITIONS) == set(Goal)


def test_promotion_always_follows_lock_acquisition() -> None:
    for goal, actions in TRANSITIONS.items():
        if Action.PROMOTE in actions:
            lock = [a for a in actions if a in (Action.ACQUIRE_LOCK, Action.RENEW_LOCK)]
            assert lock and actions.index(lock[0]) < actions.index(Action.PROMOTE), goal


def test_dcs_loss_demotes_before_lease_expiry() -> None:
    """Invariant 2: the demote deadline always falls before ttl."""
    for ttl, lw, rt in [(30, 10, 10), (5, 1, 2), (20, 2, 9)]:
        s = Settings(ttl=ttl, loop_wait=lw, retry_timeout=rt)
        assert s.demote_after < ttl
        d = decide(view("b"), local(p=PRIMARY, dcs_ok=False, last_renew=NOW), (), s,
                   NOW + s.demote_after)
        assert d.goal == Goal.DEMOTE


def test_a_replica_whose_stream_broke_never_touches_a_held_lock() -> None:
    """Issue 10 item 5: refused connections prove nothing; only the lease decides."""
    d = decide(view("a"), local(p=pg(upstream="a:5432")), (), S, NOW)
    assert d.goal == Goal.REPLICATE
    assert "evict_dead_leader" not in {g.value for g in Goal}
    assert not hasattr(local(), "leader_dead")


def fo_view(holder: str | None = "b", **failover: object) -> ClusterView:
    return ClusterView(initialize="42", leader=Leader(holder, 5) if holder else None,
                       members=MEMBERS, optime=100, failover=dict(failover))


def rpeer(name: str, wal: int = 100, **tags: object) -> PeerStatus:
    return PeerStatus(name=name, reachable=True, role="replica", running=True, timeline=1,
                      received=wal, replayed=wal, tags=dict(tags))


MANUAL = [
    ("switchover to a healthy member", fo_view("b", member="c"), local(p=PRIMARY),
     (rpeer("a"), rpeer("c")), Goal.HAND_OVER, Reason.SWITCHOVER, "c"),
    ("switchover to any: the best replica", fo_view("b", leader="b"), local(p=PRIMARY),
     (rpeer("a", 90), rpeer("c", 100)), Goal.HAND_OVER, Reason.SWITCHOVER, "c"),
    ("switchover to an unhealthy member is cancelled", fo_view(member="c"), local(p=PRIMARY),
     (rpeer("a"), PeerStatus(name="c", reachable=False)), Goal.LEAD_CLEAR_FAILOVER,
     Reason.CANDIDATE_UNHEALTHY, None),
    ("switchover to a nofailover member is cancelled", fo_view(member="c"), local(p=PRIMARY),
     (rpeer("c", nofailover=True),), Goal.LEAD_CLEAR_FAILOVER, Reason.CANDIDATE_UNHEALTHY, None),
    # The fast shutdown ships the rest; the executor checks the target got it.
    ("switchover to a lagging but running member goes ahead", fo_view(member="c"), local(p=pg(
        DataState.PRIMARY, recovery=False, upstream=None, wal=5000)), (rpeer("c", 100),),
     Goal.HAND_OVER, Reason.SWITCHOVER, "c"),
    ("switchover to a member whose postgres is down is cancelled", fo_view(member="c"),
     local(p=PRIMARY), (PeerStatus(name="c", reachable=True, role="replica", running=False),),
     Goal.LEAD_CLEAR_FAILOVER, Reason.CANDIDATE_UNHEALTHY, None),
    ("no candidate at all", fo_view("b", leader="b"), local(p=PRIMARY), (), Goal.LEAD_CLEAR_FAILOVER,
     Reason.NO_CANDIDATE, None),
    ("switchover meant for another leader is stale", fo_view("b", leader="a"),
     local(p=PRIMARY), (rpeer("c"),), Goal.LEAD_CLEAR_FAILOVER, Reason.FAILOVER_STALE, None),
    ("new leader clears the key it was named in", fo_view(member="b"), local(p=PRIMARY), (),
     Goal.LEAD_CLEAR_FAILOVER, Reason.FAILOVER_DONE, None),
    ("scheduled in the future: keep leading", fo_view(member="c", scheduled_at="2099-01-01T00:00:00+00:00"),
     local(p=PRIMARY, wall=1e9), (rpeer("c"),), Goal.LEAD, Reason.HEALTHY_LEADER, None),
    ("scheduled in the past: go", fo_view(member="c", scheduled_at="2001-01-01T00:00:00+00:00"),
     local(p=PRIMARY, wall=2e9), (rpeer("c"),), Goal.HAND_OVER, Reason.SWITCHOVER, "c"),
    ("manual failover with no leader: the named member races", fo_view(None, member="b"),
     local(tags={"failover_priority": 1}), (rpeer("c", 500),), Goal.RACE, Reason.MANUAL_FAILOVER,
     None),
    ("manual failover with no leader: others wait", fo_view(None, member="c"), local(),
     (rpeer("c"),), Goal.STAY_BEHIND, Reason.MANUAL_FAILOVER, None),
    # as Patroni 4.1.5: a named member that died does not stall the cluster
    ("manual failover to a dead member: the others race", fo_view(None, member="c"), local(),
     (rpeer("a", 90), PeerStatus(name="c", reachable=False)), Goal.RACE, Reason.HEALTHIEST, None),
    ("manual failover to a member gone from the DCS: the others race", fo_view(None, member="c"),
     local(), (rpeer("a", 90),), Goal.RACE, Reason.HEALTHIEST, None),
    ("switchover to a dead member: the former leader stays out", fo_view(None, leader="a",
     member="c"), local("a"), (rpeer("b", 90), PeerStatus(name="c", reachable=False)),
     Goal.STAY_BEHIND, Reason.MANUAL_FAILOVER, None),
    ("switchover to a dead member: the former leader does not outrank", fo_view(
        None, leader="a", member="c"), local("b"), (rpeer("a", 500),
                                                   PeerStatus(name="c", reachable=False)),
     Goal.RACE, Reason.HEALTHIEST, None),
    ("switchover to a dead member, nobody else: the former leader races", fo_view(
        None, leader="a", member="c"), local("a"), (PeerStatus(name="c", reachable=False),),
     Goal.RACE, Reason.HEALTHIEST, None),
]


@pytest.mark.parametrize("case", MANUAL, ids=[c[0] for c in MANUAL])
def test_manual_switchover_and_failover(case: tuple) -> None:  # type: ignore[type-arg]
    _, v, loc, peers, goal, reason, target = case
    d = decide(v, loc, peers, S, NOW)
    assert (d.goal, d.reason) == (goal, reason), d.detail
    if target:
        assert d.target == target


def test_a_clonefrom_replica_is_the_clone_source() -> None:
    members = (member("a"), member("b"), member("c", clonefrom=True))
    d = decide(view("a", members=members), local(p=EMPTY), (), S, NOW)
    assert (d.goal, d.target) == (Goal.CREATE_REPLICA, "c")
    stopped = (member("a"), member("b"), member("c", state="stopped", clonefrom=True))
    d = decide(view("a", members=stopped), local(p=EMPTY), (), S, NOW)
    assert (d.goal, d.target) == (Goal.CREATE_REPLICA, "a")


SYNC_VIEW = ClusterView(initialize="42", leader=None, members=MEMBERS, optime=100,
                        sync_leader="a", sync_standbys=("b",), sync_index=7)
SYNC_S = Settings(ttl=30, loop_wait=10, retry_timeout=10, maximum_lag_on_failover=1000,
                  use_pg_rewind=True, synchronous_mode=True)


def test_sync_standby_races_though_an_async_replica_received_more() -> None:
    """Issue 10 item 3: c (asynchronous) is a few bytes ahead of b (the sync
    standby): c may not promote, so b must not wait for it."""
    d = decide(SYNC_VIEW, local("b", pg(wal=100)), [DOWN, peer("c", 140)], SYNC_S, NOW)
    assert (d.goal, d.reason) == (Goal.RACE, Reason.HEALTHIEST)
    d = decide(SYNC_VIEW, local("c", pg(wal=140)), [DOWN, peer("b", 100)], SYNC_S, NOW)
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.NOT_SYNC)


def test_sync_standbys_are_ranked_among_themselves() -> None:
    v = ClusterView(initialize="42", leader=None, members=MEMBERS, optime=100,
                    sync_leader="a", sync_standbys=("b", "c"), sync_index=7)
    d = decide(v, local("b", pg(wal=100)), [DOWN, peer("c", 140)], SYNC_S, NOW)
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.PEER_AHEAD)
    d = decide(v, local("c", pg(wal=140)), [DOWN, peer("b", 100)], SYNC_S, NOW)
    assert d.goal == Goal.RACE


def test_former_leader_ahead_does_not_stop_the_sync_standby() -> None:
    d = decide(SYNC_VIEW, local("b", pg(wal=100)), [peer("a", 150), peer("c", 90)], SYNC_S, NOW)
    assert d.goal == Goal.RACE


def test_no_race_while_a_peer_runs_as_a_primary() -> None:
    """As Patroni 4.1.5 (a member that answers as a running primary makes a
    replica not the healthiest): a peer that still runs as a primary without the
    lock (its agent about to take the lock back or to demote) keeps a replica
    out of the race, whatever its WAL position; in synchronous mode the /sync
    leader too, though its extra WAL would not stop the standby."""
    alive = replace(peer("a", 90), role="primary")
    for v, settings in ((view(None), S), (SYNC_VIEW, SYNC_S)):
        d = decide(v, local("b", pg(wal=100)), [alive, peer("c", 90)], settings, NOW)
        assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.PRIMARY_ALIVE), d.detail
        stopped = replace(alive, running=False)
        assert decide(v, local("b", pg(wal=100)), [stopped], settings, NOW).goal == Goal.RACE


def test_full_restart_in_strict_mode_as_the_campaign_logged() -> None:
    """Issue 10 campaign (strict, full_restart, 20:24:28): n1, the standby in
    /sync, stopped before the leader n2, which then wrote 832 bytes n1 never got
    (commits that waited for n1 and were never acknowledged, its shutdown
    checkpoint).  n1 may take the lock, as in Patroni 4.1.5: n2 is /sync's leader
    (its extra WAL was never acknowledged) and a peer that does not answer is not
    waited for.  n3, not in /sync, may not; nor may n1 once /sync no longer names it."""
    strict = replace(SYNC_S, synchronous_mode_strict=True, check_timeline=True)
    v = ClusterView(initialize="42", leader=None, members=(), optime=0x70D88A8,
                    history=((6, 0x69D6A18, "no recovery target specified"),),
                    sync_leader="n2", sync_standbys=("n1",), sync_index=7)
    n1 = local("n1", pg(wal=0x70D8568, tl=7, upstream=None))
    n3 = PeerStatus(name="n3", reachable=True, role="replica", running=True, timeline=1,
                    received=0x50DC268, replayed=0x50DC268)
    for n2 in (PeerStatus(name="n2", reachable=False),
               PeerStatus(name="n2", reachable=True, role="replica", running=True, timeline=7,
                          received=0x70D88A8, replayed=0x70D88A8)):
        d = decide(v, n1, [n2, n3], strict, NOW)
        assert (d.goal, d.reason) == (Goal.RACE, Reason.HEALTHIEST), n2
    d = decide(v, local("n3", pg(wal=0x50DC268, upstream=None)), [], strict, NOW)
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.NOT_SYNC)
    d = decide(replace(v, sync_standbys=()), n1, [], strict, NOW)
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.NOT_SYNC)


def test_a_node_that_cannot_fence_a_primary_does_not_lead() -> None:
    """Issue 10 item 6: with no fence (or no required watchdog) a leader stops
    writing, then lets the lock go; a replica does not race for it."""
    why = "the fence process cannot run"
    d = decide(view("b"), local(p=PRIMARY, unguarded=why), (), S, NOW)
    assert (d.goal, d.reason) == (Goal.STEP_DOWN, Reason.UNGUARDED)
    assert [a.value for a in d.actions] == ["demote", "release_lock"]
    d = decide(view("b"), local(unguarded=why), (), S, NOW)
    assert d.goal == Goal.RELEASE_UNGUARDED
    d = decide(view(None), local(unguarded=why), (), S, NOW)
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.UNGUARDED)
    d = decide(view(None), local(p=PRIMARY, unguarded=why), (), S, NOW)
    assert d.goal == Goal.DEMOTE
    assert decide(view(None), local(), (), S, NOW).goal == Goal.RACE


Q_S = Settings(ttl=30, loop_wait=10, retry_timeout=10, maximum_lag_on_failover=1000,
               use_pg_rewind=True, synchronous_mode=True, synchronous_quorum=True)


def qview(voters: tuple[str, ...], quorum: int) -> ClusterView:
    return ClusterView(initialize="42", leader=None, members=MEMBERS, optime=100,
                       sync_leader="a", sync_standbys=voters, sync_index=7, sync_quorum=quorum)


def test_quorum_candidate_needs_quorum_plus_one_voters_not_ahead() -> None:
    v = qview(("b", "c"), 1)
    d = decide(v, local("b", pg(wal=100)), [DOWN, peer("c", 100)], Q_S, NOW)
    assert d.goal == Goal.RACE
    d = decide(v, local("b", pg(wal=100)), [DOWN, PeerStatus(name="c", reachable=False)], Q_S, NOW)
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.NO_QUORUM), "c unseen: no proof"
    d = decide(v, local("b", pg(wal=100)), [DOWN, peer("c", 120)], Q_S, NOW)
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.PEER_AHEAD)


def test_quorum_non_voter_may_promote_with_enough_votes() -> None:
    v = qview(("b",), 0)
    d = decide(v, local("c", pg(wal=100)), [DOWN, peer("b", 90)], Q_S, NOW)
    assert d.goal == Goal.RACE, "b voted: c has all b has"
    d = decide(v, local("c", pg(wal=100)), [DOWN, PeerStatus(name="b", reachable=False)], Q_S, NOW)
    assert d.reason == Reason.NO_QUORUM


def test_quorum_empty_voters_nobody_but_the_old_leader() -> None:
    v = qview((), 0)
    d = decide(v, local("b", pg(wal=100)), [DOWN, peer("c", 90)], Q_S, NOW)
    assert d.reason == Reason.NO_QUORUM


PAUSED = Settings(pause=True)


def test_pause_dcs_outage_demotes_nobody() -> None:
    long_after = NOW + 10 * PAUSED.ttl
    d = decide(view("b"), local(p=PRIMARY, dcs_ok=False, last_renew=NOW), (), PAUSED, long_after)
    assert (d.goal, d.reason) == (Goal.KEEP_WAITING, Reason.PAUSED)


def test_pause_running_primary_takes_a_free_lock_only() -> None:
    d = decide(view(None), local(p=PRIMARY), (), PAUSED, NOW)
    assert d.goal == Goal.PAUSED_TAKE_LOCK
    assert TRANSITIONS[Goal.PAUSED_TAKE_LOCK] == (Action.ACQUIRE_LOCK,)
    assert decide(view(None), local(), (), PAUSED, NOW).goal == Goal.PAUSED  # a replica waits
    other = ClusterView(initialize="43", leader=None, members=MEMBERS, optime=100)
    assert decide(other, local(p=PRIMARY), (), PAUSED, NOW).goal == Goal.PAUSED  # not ours


def test_pause_switchover_promotes_the_handed_lock_and_restarts_the_old_leader() -> None:
    handed = fo_view("b", leader="a", member="b")
    assert decide(handed, local(), (), PAUSED, NOW).goal == Goal.PROMOTE_HELD
    stopped = pg(DataState.PRIMARY, running=False, recovery=False, upstream=None)
    d = decide(handed, local("a", p=stopped, demoted=True), (), PAUSED, NOW)
    assert (d.goal, d.target) == (Goal.START_REPLICA, "b")
    assert decide(handed, local("a", p=stopped), (), PAUSED, NOW).goal == Goal.PAUSED
