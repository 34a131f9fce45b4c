"""check_timeline, primary_stop_timeout, remove_data_directory_on_diverged_timelines:
settings, the pure timeline rules, and the decisions they change."""
from __future__ import annotations

from dataclasses import replace

import pytest

from howdah.core.decide import decide
from howdah.core.models import (ClusterView, DataState, Leader, LocalState, Member, PeerStatus,
                                 PgStatus)
from howdah.core.settings import Settings, SettingsError, build_settings
from howdah.core.timeline import (behind_cluster, cluster_timeline, diverged, parse_history_file,
                                   parse_lsn)
from howdah.core.transitions import Goal, Reason

NOW = 1000.0
HISTORY = ((1, 50331800, "no recovery target specified", "2026-12-03T10:00:00+00:00", "a"),)


def members() -> tuple[Member, ...]:
    return tuple(Member(name=n, role="primary" if n == "a" else "replica", state="running",
                        conn_url=f"postgres://{n}:5432/postgres",
                        api_url=f"http://{n}:8008/patroni") for n in ("a", "b"))


def replica(tl: int = 1, running: bool = True, data: DataState = DataState.REPLICA) -> PgStatus:
    return PgStatus(data=data, running=running, in_recovery=True, sysid="42", timeline=tl,
                    wal_position=100, replayed=100, upstream_host="a:5432")


def test_settings_parse() -> None:
    s = build_settings({"check_timeline": True, "primary_stop_timeout": 7,
                        "synchronous_mode": True},
                       {"remove_data_directory_on_diverged_timelines": True})
    assert (s.check_timeline, s.primary_stop_timeout, s.stop_timeout) == (True, 7, 7.0)
    assert s.remove_data_directory_on_diverged_timelines
    assert build_settings({"primary_stop_timeout": 7}, {}).stop_timeout is None  # async
    assert build_settings({"master_stop_timeout": 4, "synchronous_mode": "quorum"},
                          {}).stop_timeout == 4.0
    assert build_settings({}, {}).stop_timeout is None
    with pytest.raises(SettingsError, match="primary_stop_timeout"):
        build_settings({"primary_stop_timeout": "soon"}, {})


def test_cluster_timeline() -> None:
    assert cluster_timeline(()) == 0
    assert cluster_timeline(HISTORY) == 2
    assert cluster_timeline(((3, 1), (7, 2))) == 8
    assert cluster_timeline((("x",),)) == 0


def test_history_file_and_divergence() -> None:
    text = "1\t0/3000060\tno recovery target specified\n\n2\t0/5000000\treason\n"
    switches = parse_history_file(text)
    assert switches == [(1, parse_lsn("0/3000060")), (2, parse_lsn("0/5000000"))]
    at = parse_lsn("0/3000060")
    # a replica is fine until it replayed past the switch point
    assert not diverged(True, 1, at, 3, switches)
    assert diverged(True, 1, at + 8, 3, switches)
    # a former primary: its shutdown checkpoint must start before the switch point
    assert not diverged(False, 1, at - 0x68, 3, switches)
    assert diverged(False, 1, at, 3, switches)
    assert not diverged(False, 3, 1, 3, switches)  # same timeline
    assert diverged(False, 4, 1, 3, switches)  # ahead of the leader's timeline
    assert diverged(True, 5, 1, 9, [(1, 10), (7, 20)])  # not in the leader's history


def test_check_timeline_keeps_an_old_replica_from_leading() -> None:
    view = ClusterView(initialize="42", members=members(), optime=100, history=HISTORY)
    me = LocalState(name="b", pg=replica(tl=1))
    on = Settings(check_timeline=True)
    d = decide(view, me, (), on, NOW)
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.TIMELINE_BEHIND)
    assert decide(view, me, (), Settings(), NOW).goal == Goal.RACE  # off: races
    assert decide(view, replace(me, pg=replica(tl=2)), (), on, NOW).goal == Goal.RACE
    d = decide(view, replace(me, pg=replica(tl=0)), (), on, NOW)  # unknown timeline
    assert (d.goal, d.reason) == (Goal.STAY_BEHIND, Reason.TIMELINE_BEHIND)
    # no history key: nothing to compare with
    assert decide(replace(view, history=()), me, (), on, NOW).goal == Goal.RACE


def test_diverged_former_primary_is_cloned_again_only_when_allowed() -> None:
    view = ClusterView(initialize="42", leader=Leader("a", 5), members=members(), optime=100)
    stopped = PgStatus(data=DataState.PRIMARY, running=False, sysid="42", timeline=1)
    me = LocalState(name="b", pg=stopped, diverged=True)
    allowed = Settings(remove_data_directory_on_diverged_timelines=True)
    d = decide(view, me, (), allowed, NOW)
    assert (d.goal, d.reason, d.target) == (Goal.REINITIALIZE, Reason.DIVERGED, "a")
    assert decide(view, me, (), Settings(), NOW).goal == Goal.START_REPLICA  # data kept
    assert decide(view, replace(me, diverged=False), (), allowed, NOW).goal == Goal.START_REPLICA
    assert decide(view, replace(me, diverged=None), (), allowed, NOW).goal == Goal.START_REPLICA
    # with pg_rewind on, a former primary is rewound instead
    rewind = replace(allowed, use_pg_rewind=True)
    assert decide(view, me, (), rewind, NOW).goal == Goal.REWIND
    # a failed rewind removes the data under either setting, as Patroni
    failed = replace(me, rewind_failed=True)
    assert decide(view, failed, (), allowed, NOW).goal == Goal.REINITIALIZE
    assert decide(view, failed, (), Settings(), NOW).goal == Goal.NEED_OPERATOR


def test_a_running_replica_that_diverged_is_cloned_again_only_when_allowed() -> None:
    """A replica running on a timeline the leader left before its position (a
    former primary started as a replica, one that replayed WAL the new leader
    never had) can never stream: stopped and cloned again in one task."""
    view = ClusterView(initialize="42", leader=Leader("a", 5), members=members(), optime=100,
                       history=HISTORY)
    me = LocalState(name="b", pg=replica(tl=1), diverged=True)
    allowed = Settings(remove_data_directory_on_diverged_timelines=True)
    d = decide(view, me, (), allowed, NOW)
    assert (d.goal, d.reason, d.target) == (Goal.REINIT_REQUESTED, Reason.DIVERGED, "a")
    assert decide(view, me, (), Settings(), NOW).goal == Goal.REPLICATE  # kept, as Patroni
    for unknown in (False, None):  # not diverged, or not known yet: asked again next cycle
        assert decide(view, replace(me, diverged=unknown), (), allowed, NOW).goal == \
            Goal.REPLICATE
    standby = replace(allowed, standby_cluster={"host": "remote"})
    assert decide(view, me, (), standby, NOW).goal != Goal.REINIT_REQUESTED


def test_a_running_replica_that_diverged_is_rewound_with_pg_rewind_on() -> None:
    """As Patroni: with use_pg_rewind on it is stopped and rewound against the
    leader (also when the remove setting is on: rewinding comes first)."""
    view = ClusterView(initialize="42", leader=Leader("a", 5), members=members(), optime=100,
                       history=HISTORY)
    me = LocalState(name="b", pg=replica(tl=1), diverged=True)
    for remove in (False, True):
        s = Settings(use_pg_rewind=True, remove_data_directory_on_diverged_timelines=remove)
        d = decide(view, me, (), s, NOW)
        assert (d.goal, d.reason, d.target) == (Goal.REWIND, Reason.DIVERGED, "a")
    s = Settings(use_pg_rewind=True)
    assert decide(view, replace(me, diverged=None), (), s, NOW).goal == Goal.REPLICATE
    # the leader not running yet: kept streaming-attempting until it does
    down = tuple(replace(m, state="starting") if m.name == "a" else m for m in members())
    assert decide(replace(view, members=down), me, (), s, NOW).goal != Goal.REWIND


def test_check_timeline_rules_out_switchover_candidates_behind_the_cluster() -> None:
    """As Patroni's is_failover_possible: with check_timeline a replica whose
    timeline is behind /history's is no candidate for a switchover."""
    assert behind_cluster(1, HISTORY) and behind_cluster(0, HISTORY)
    assert not behind_cluster(2, HISTORY) and not behind_cluster(1, ())
    primary = PgStatus(data=DataState.PRIMARY, running=True, sysid="42", timeline=2,
                       wal_position=100)
    me = LocalState(name="a", pg=primary, wall=NOW)
    peers = (PeerStatus(name="b", reachable=True, role="replica", running=True, timeline=1,
                        received=100, replayed=100),)
    on = Settings(check_timeline=True)
    for fo in ({"leader": "a", "member": "b"}, {"leader": "a"}):
        view = ClusterView(initialize="42", leader=Leader("a", 5), members=members(),
                           optime=100, history=HISTORY, failover=fo)
        d = decide(view, me, peers, on, NOW)
        assert d.goal == Goal.LEAD_CLEAR_FAILOVER, (fo, d)
        assert decide(view, me, peers, Settings(), NOW).goal == Goal.HAND_OVER  # off
        on_tl2 = (replace(peers[0], timeline=2),)
        assert decide(view, me, on_tl2, on, NOW).goal == Goal.HAND_OVER


def test_primary_conninfo_bounds_the_connect() -> None:
    from howdah.pg import conf
    creds = conf.Credentials("replicator", "pw", ())
    text = conf.upstream_conninfo("postgres://10.0.0.1:5433/postgres", creds, "n1", "/p", 15)
    assert "connect_timeout=5" in text
