"""The HA decision: a pure function of what was observed this cycle."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from howdah.core.models import (
    ClusterView,
    DataState,
    LocalState,
    PeerStatus,
    failover_allowed,
    priority_of,
    truthy,
)
from howdah.core.failsafe import hold_race, keep_leading
from howdah.core.manual import healthy_candidates, leader_handover, manual_race
from howdah.core.ranking import Candidate, better_peers, from_peer
from howdah.core.settings import Settings
from howdah.core.sync import may_promote
from howdah.core.timeline import behind_cluster, cluster_timeline
from howdah.core.transitions import Decision, Goal, Reason

G, R = Goal, Reason
WAS_PRIMARY = (DataState.PRIMARY, DataState.CRASHED_PRIMARY)


def decide(
    view: ClusterView,
    local: LocalState,
    peers: Sequence[PeerStatus],
    settings: Settings,
    now: float,
) -> Decision:
    """Choose this cycle's goal.  `view` is the last good DCS view."""
    i_lead = view.leader is not None and view.leader.name == local.name
    if not local.dcs_ok:
        if settings.pause:  # as Patroni: maintenance mode demotes nobody, DCS or not
            return Decision(G.KEEP_WAITING, R.PAUSED, "paused: DCS unreachable; demoting nobody")
        return _dcs_lost(local, settings, now)
    if local.task is not None:
        goal = G.LEAD_TASK if i_lead else G.WAIT_TASK
        return Decision(goal, R.TASK_RUNNING, f"{local.task.kind.value} in progress")
    if local.request is not None and view.initialize:
        return _requested(view, local, i_lead)
    if settings.pause:
        named = view.failover.get("member") if view.failover else None
        if i_lead and named == local.name and local.pg.running and local.pg.in_recovery:
            # the lock was handed to us by a switchover asked in pause: promote, as Patroni
            return Decision(G.PROMOTE_HELD, R.SWITCHOVER, "paused: promoting, as the switchover asked")
        if i_lead and named and local.pg.running and not local.pg.in_recovery:
            manual = leader_handover(view, local, peers, settings)
            if manual is not None:  # an operator's switchover to a named member, as in Patroni
                return manual
        if view.leader is None and named and local.pg.running:
            manual = manual_race(view, local)
            if manual is not None:
                return manual
        if i_lead:
            return Decision(G.PAUSED_LEAD, R.PAUSED, "paused: keeping the leader lock only")
        if view.leader is not None and local.demoted and not local.pg.running:
            # the one exception to "never start postgres in pause" (Patroni's too): the
            # former leader that stopped for a switchover follows the new one
            return Decision(G.START_REPLICA, R.SWITCHOVER,
                            f"paused: starting as a replica of {view.leader.name} after the "
                            "switchover", view.leader.name)
        if view.leader is None and local.pg.running and not local.pg.in_recovery and (
                not view.initialize or local.pg.sysid == view.initialize):
            # as Patroni: the running primary takes a free lock back (after a DCS outage,
            # an agent restart), without touching postgres
            return Decision(G.PAUSED_TAKE_LOCK, R.PAUSED,
                            "paused: no leader and postgres runs as a primary here: taking the lock")
        return Decision(G.PAUSED, R.PAUSED, "paused: changing nothing")
    early = _uninitialized(view, local, i_lead, settings)
    if early is not None:
        return early
    if i_lead:
        return _leader(view, local, peers, settings, now)
    if view.leader is None:
        return _no_leader(view, local, peers, settings)
    return _follower(view, local, settings)


def _requested(view: ClusterView, local: LocalState, i_lead: bool) -> Decision:
    kind = local.request
    if kind == "reinitialize":
        if i_lead:
            return Decision(G.REJECT_REQUEST, R.REFUSED, "the leader cannot be reinitialized")
        leader = view.leader.name if view.leader else None
        return Decision(G.REINIT_REQUESTED, R.REQUESTED, f"reinitializing from {leader}", leader)
    if kind == "restart":
        goal = G.RESTART_LEADER if i_lead else G.RESTART
        return Decision(goal, R.REQUESTED, "restarting postgres as asked",
                        view.leader.name if view.leader else None)
    goal = G.RELOAD_LEADER if i_lead else G.RELOAD
    return Decision(goal, R.REQUESTED, "reloading the configuration as asked")


def _dcs_lost(local: LocalState, settings: Settings, now: float) -> Decision:
    primary = local.pg.running and not local.pg.in_recovery
    kept = keep_leading(local, settings) if primary else None
    if kept is not None:
        return kept
    if primary and local.last_renew is not None:
        waited = now - local.last_renew
        if waited >= settings.demote_after:
            return Decision(
                G.DEMOTE,
                R.DCS_UNREACHABLE,
                f"demoting: DCS unreachable and the lock not renewed for {waited:.1f}s",
            )
        return Decision(
            G.KEEP_WAITING,
            R.DCS_RETRYING,
            f"DCS unreachable; lease renewed {waited:.1f}s ago, retrying",
        )
    if primary:
        return Decision(G.DEMOTE, R.DCS_UNREACHABLE, "demoting: primary without a lease")
    return Decision(G.KEEP_WAITING, R.DCS_RETRYING, "DCS unreachable, retrying")


def _uninitialized(view: ClusterView, local: LocalState, i_lead: bool,
                   settings: Settings) -> Decision | None:
    empty = local.pg.data == DataState.EMPTY
    if view.initialize is None:
        if empty and view.leader is None:
            return Decision(G.BOOTSTRAP, R.CLUSTER_EMPTY, "cluster not initialized: bootstrapping")
        if empty:
            return Decision(G.WAIT_BOOTSTRAP, R.BOOTSTRAP_RUNNING, "waiting for bootstrap")
        return None  # data present and no key (DCS wiped): the race below takes it
    if view.initialize == "":
        if view.leader is None or i_lead:
            return Decision(
                G.CLEAR_ABANDONED_BOOTSTRAP,
                R.BOOTSTRAP_ABANDONED,
                "bootstrap abandoned by its node: freeing initialize",
            )
        return Decision(
            G.WAIT_BOOTSTRAP, R.BOOTSTRAP_RUNNING, f"waiting for {view.leader.name} to bootstrap"
        )
    if not empty and local.pg.sysid and local.pg.sysid != view.initialize:
        return Decision(
            G.SYSID_MISMATCH,
            R.SYSID_MISMATCH,
            f"data directory belongs to system {local.pg.sysid}, cluster is "
            f"{view.initialize}: not touching it",
        )
    if empty:
        if i_lead:
            return Decision(G.RELEASE_NO_DATA, R.NO_DATA, "holding the lock with no data")
        leader = view.leader_member
        # `initialize` holds a system identifier only once the leader's
        # postgres ran: its member key may not say "running" yet
        if leader is not None and leader.conn_url:
            source = _clone_source(view, leader.name)
            return Decision(
                G.CREATE_REPLICA, R.NO_DATA, f"creating replica from {source}", target=source
            )
        if view.leader is None and settings.replica_without_leader:
            return Decision(G.CREATE_REPLICA, R.NO_DATA,
                            "no leader: restoring with a method that needs none (no_master)")
        return Decision(G.WAIT_LEADER, R.LEADER_NOT_READY, "no running leader to clone from")
    return None


def _clone_source(view: ClusterView, leader: str) -> str:
    for m in view.members:
        tags = m.tags or {}
        if m.name != leader and tags.get("clonefrom") and m.state == "running":
            return m.name
    return leader


def _leader(view: ClusterView, local: LocalState, peers: Sequence[PeerStatus],
            settings: Settings, now: float) -> Decision:
    pg = local.pg
    if local.unguarded is not None and settings.standby_cluster is None:
        if pg.running and not pg.in_recovery:
            return Decision(G.STEP_DOWN, R.UNGUARDED,
                            f"stepping down: {local.unguarded}, a primary must not run unfenced")
        return Decision(G.RELEASE_UNGUARDED, R.UNGUARDED,
                        f"releasing the lock: {local.unguarded}")
    if local.unanswered and not pg.running:
        return _unanswered(local, settings, now)
    if pg.running and not pg.in_recovery:
        manual = leader_handover(view, local, peers, settings)
        if manual is not None:
            return manual
        return Decision(G.LEAD, R.HEALTHY_LEADER, "no action: I am the leader with the lock")
    if pg.running and settings.standby_cluster is not None:
        remote = remote_of(settings.standby_cluster)
        return Decision(G.LEAD_STANDBY, R.STANDBY_CLUSTER,
                        f"no action: standby leader replicating from {remote}")
    if pg.running:
        return Decision(G.PROMOTE_HELD, R.HOLD_LOCK_AS_REPLICA, "promoting: I hold the lock")
    if local.crash_since is not None and settings.primary_start_timeout == 0 \
            and crash_failover_possible(view, local, peers, settings):
        # as Patroni: 0 means fail over rather than restart a crashed primary,
        # when a healthy replica can take over (the executor stops the
        # postmaster first and only then releases the lock)
        return Decision(G.RELEASE_AFTER_CRASH, R.START_TIMEOUT,
                        "primary crashed and primary_start_timeout is 0: failing over")
    if local.crash_since is not None and now - local.crash_since > settings.primary_start_timeout:
        return Decision(
            G.RELEASE_AFTER_CRASH,
            R.START_TIMEOUT,
            f"postgres not back within primary_start_timeout "
            f"({settings.primary_start_timeout}s): releasing the lock",
        )
    if pg.data in WAS_PRIMARY:
        return Decision(G.RESTART_PRIMARY, R.PG_CRASHED, "postgres is down: restarting as primary")
    return Decision(G.START_LEADER_READONLY, R.PG_DOWN, "starting postgres to promote it")


def _unanswered(local: LocalState, settings: Settings, now: float) -> Decision:
    """The leader's postmaster runs but postgres did not answer within the
    bound of the lease: it cannot be confirmed, so no renewal; at the demotion
    point it is stopped (SIGKILL once signals go unanswered) and only then the
    lock is released (issue 10 item 7)."""
    waited = None if local.last_renew is None else now - local.last_renew
    if waited is not None and waited < settings.demote_after:
        return Decision(G.KEEP_WAITING, R.PG_DOWN, f"postgres does not answer; lease renewed "
                        f"{waited:.1f}s ago: not renewing, retrying")
    return Decision(G.RELEASE_AFTER_CRASH, R.PG_DOWN, "postgres did not answer within the "
                    "lease: stopping it, then releasing the lock")


def crash_failover_possible(view: ClusterView, local: LocalState, peers: Sequence[PeerStatus],
                            settings: Settings) -> bool:
    """A replica could take over from this crashed primary: reachable, running,
    allowed to fail over, within maximum_lag_on_failover of the last optime and,
    in synchronous mode, a synchronous standby (in quorum mode enough of them)."""
    ok = [p for p in healthy_candidates(view, local, peers, settings)
          if view.optime is None or view.optime - p.wal_position <= settings.maximum_lag_on_failover]
    if _quorum_active(view, settings):
        return len(ok) >= max(1, view.sync_quorum)
    return bool(ok)


def remote_of(standby: Mapping[str, Any]) -> str:
    host = standby.get("host")
    if not host:
        return "the WAL archive"
    return f"{host}:{standby.get('port') or 5432}"


def _no_leader(
    view: ClusterView, local: LocalState, peers: Sequence[PeerStatus], settings: Settings
) -> Decision:
    pg = local.pg
    if not pg.running:
        return Decision(G.START_READONLY, R.NO_LEADER, "no leader: starting postgres read-only")
    primary = not pg.in_recovery
    if local.unguarded is not None and settings.standby_cluster is None:
        if primary:
            return Decision(G.DEMOTE, R.UNGUARDED, f"demoting: {local.unguarded}")
        return Decision(G.STAY_BEHIND, R.UNGUARDED,
                        f"no leader, but not taking the lock: {local.unguarded}")
    manual = manual_race(view, local, peers)
    if manual is not None and not primary:
        return manual
    held = None if primary else hold_race(view, local, settings)
    if held is not None:
        return held
    if not primary:
        if not settings.synchronous_quorum and not may_promote(
                local.name, view.sync_leader, view.sync_standbys, settings.synchronous_mode):
            return Decision(G.STAY_BEHIND, R.NOT_SYNC,
                            "no leader, but in synchronous mode only "
                            + (", ".join(view.sync_standbys) or "no standby") + " may take over")
        if not failover_allowed(local.tags):
            return Decision(G.STAY_BEHIND, R.NOT_ELIGIBLE, "no leader, but failover is not allowed here")
        if view.optime is not None:
            lag = view.optime - pg.wal_position
            if lag > settings.maximum_lag_on_failover:
                return Decision(
                    G.STAY_BEHIND,
                    R.LAGGING,
                    f"no leader, but my lag {lag} exceeds maximum_lag_on_failover "
                    f"{settings.maximum_lag_on_failover}",
                )
        behind = _timeline_behind(view, local, settings)
        if behind is not None:
            return Decision(G.STAY_BEHIND, R.TIMELINE_BEHIND, behind)
        # as Patroni: a peer still running as a primary (about to take the lock
        # back, or to demote) keeps a replica out of the race, ahead or not
        alive = sorted(p.name for p in peers if p.name != local.name and p.reachable
                       and p.running and p.role in ("primary", "master"))
        if alive:
            return Decision(G.STAY_BEHIND, R.PRIMARY_ALIVE,
                            f"no leader, but {', '.join(alive)} still runs as a primary")
    me = Candidate(
        name=local.name,
        reachable=True,
        eligible=True,
        timeline=pg.timeline,
        received=pg.wal_position,
        replayed=pg.replayed,
        priority=priority_of(local.tags),
    )
    ahead = better_peers(me, [from_peer(p) for p in _rivals(view, local, peers, settings)])
    if primary:
        # a running primary taking a free lock back (after a failsafe DCS outage): on its
        # timeline no replica has WAL it lacks (a peer read after our own snapshot can
        # show a few bytes more); only a newer timeline means someone else was promoted
        ahead = [p for p in ahead if p.timeline > pg.timeline]
    if ahead:
        names = ", ".join(sorted(p.name for p in ahead))
        if primary:
            return Decision(G.DEMOTE, R.PEER_AHEAD, f"primary without the lock and {names} ahead")
        return Decision(G.STAY_BEHIND, R.PEER_AHEAD, f"no leader, but {names} is ahead of me")
    if not primary and _quorum_active(view, settings) and view.sync_leader != local.name:
        voters = set(view.sync_standbys)
        # a voter not ahead of me says I have every commit it has; q + 1 such
        # voters include one that has every acknowledged commit
        votes = int(local.name in voters) + sum(
            1 for p in peers if p.name in voters and p.name != local.name and p.reachable
            and p.running and 0 < p.wal_position <= pg.wal_position
            and p.timeline <= pg.timeline)
        need = view.sync_quorum + 1
        if votes < need:
            return Decision(G.STAY_BEHIND, R.NO_QUORUM,
                            f"no leader, but {votes} of the {need} quorum votes needed "
                            f"(voters: {', '.join(sorted(voters)) or 'none'})")
        return Decision(G.RACE, R.HEALTHIEST,
                        f"no leader, I am the healthiest with {votes} of {need} quorum votes: "
                        "taking the lock")
    return Decision(G.RACE, R.HEALTHIEST, "no leader and I am the healthiest: taking the lock")


def _timeline_behind(view: ClusterView, local: LocalState, settings: Settings) -> str | None:
    """check_timeline, as Patroni: a replica on an older timeline than the one
    /history says the cluster reached missed a failover and must not lead."""
    if not settings.check_timeline or settings.standby_cluster is not None:
        return None
    mine = local.pg.timeline
    if not behind_cluster(mine, view.history):
        return None
    if mine <= 0:
        return "no leader, but my timeline is unknown (check_timeline)"
    return (f"no leader, but my timeline {mine} is behind the cluster's timeline "
            f"{cluster_timeline(view.history)} (check_timeline)")


def _quorum_active(view: ClusterView, settings: Settings) -> bool:
    return settings.synchronous_mode and settings.synchronous_quorum and \
        view.sync_leader is not None


def _rivals(view: ClusterView, local: LocalState, peers: Sequence[PeerStatus],
            settings: Settings) -> list[PeerStatus]:
    """The peers I am ranked against in the race.

    In synchronous mode only the standbys in the sync key have every
    acknowledged commit, so only they compete, among themselves: an
    asynchronous replica that received a few more bytes (commits nobody
    acknowledged) must not hold a synchronous standby back, since it may
    not promote itself either.  The former leader does not compete: any WAL
    it has beyond the sync standbys was never acknowledged.
    """
    others = [p for p in peers if p.name != local.name]
    former = view.failover.get("leader") if view.failover else None
    if former and view.failover.get("member"):
        # a switchover whose target died: its former leader does not compete
        others = [p for p in others if p.name != former]
    if _quorum_active(view, settings):
        # in quorum mode anyone ahead may collect the votes: defer to it
        return [p for p in others if p.name != view.sync_leader]
    if settings.synchronous_mode and view.sync_leader is not None:
        listed = set(view.sync_standbys)
        others = [p for p in others if p.name in listed and p.name != view.sync_leader]
    return others


def _follower(view: ClusterView, local: LocalState, settings: Settings) -> Decision:
    assert view.leader is not None
    leader = view.leader.name
    pg = local.pg
    if pg.running and not pg.in_recovery:
        return Decision(G.DEMOTE, R.LOST_LOCK, f"demoting: {leader} holds the lock", target=leader)
    if pg.running and local.diverged and settings.use_pg_rewind \
            and settings.standby_cluster is None:
        # as Patroni: stopped cleanly, then pg_rewind against the leader (preferred
        # to cloning again when both are on, as there)
        leader_m = view.leader_member
        if leader_m is not None and leader_m.state == "running" and leader_m.conn_url:
            return Decision(G.REWIND, R.DIVERGED, f"replaying a timeline that diverged from "
                            f"{leader}'s: stopping to rewind and follow it", target=leader)
    if pg.running and local.diverged and settings.remove_data_directory_on_diverged_timelines \
            and settings.standby_cluster is None:
        # it replays a timeline the leader left before this node's position: it
        # can never stream; stopped and cloned again in one task
        return Decision(G.REINIT_REQUESTED, R.DIVERGED,
                        f"replaying a timeline that diverged from {leader}'s and "
                        "remove_data_directory_on_diverged_timelines is on: cloning again",
                        target=leader)
    upstream = _upstream(view, local, leader)
    archive_only = truthy((local.tags or {}).get("nostream"))
    if not pg.running:
        if local.rewind_failed:
            if settings.remove_data_directory_on_rewind_failure or \
                    settings.remove_data_directory_on_diverged_timelines:
                return Decision(
                    G.REINITIALIZE, R.REWIND_FAILED, "rewind failed: cloning again", target=leader
                )
            return Decision(
                G.NEED_OPERATOR,
                R.REWIND_FAILED,
                "rewind failed and remove_data_directory_on_rewind_failure is off: "
                "run reinit to clone this member again",
            )
        if pg.data in WAS_PRIMARY and settings.use_pg_rewind:
            leader_m = view.leader_member
            if leader_m is None or leader_m.state != "running" or not leader_m.conn_url:
                return Decision(G.WAIT_LEADER, R.LEADER_NOT_READY, f"waiting for {leader} to run")
            return Decision(G.REWIND, R.FORMER_PRIMARY, f"rewinding to follow {leader}", leader)
        if local.diverged and settings.remove_data_directory_on_diverged_timelines and \
                settings.standby_cluster is None:
            return Decision(G.REINITIALIZE, R.DIVERGED,
                            f"my timeline diverged from {leader}'s and "
                            "remove_data_directory_on_diverged_timelines is on: cloning again",
                            target=leader)
        if archive_only:
            return Decision(G.START_REPLICA, R.NOSTREAM,
                            "starting as a replica replaying the WAL archive only (nostream)")
        return Decision(G.START_REPLICA, R.PG_DOWN, f"starting as a replica of {upstream}", upstream)
    if archive_only:  # as Patroni: no primary_conninfo at all, so no slot either
        if pg.upstream_host is not None:
            return Decision(G.FOLLOW, R.NOSTREAM, "nostream: replaying the WAL archive only, "
                            f"not streaming from {pg.upstream_host}")
        return Decision(G.REPLICATE, R.NOSTREAM, "no action: replaying the WAL archive (nostream)")
    member = view.member(upstream)
    want_host = _host_of(member.conn_url) if member else None
    if want_host and pg.upstream_host != want_host:
        return Decision(G.FOLLOW, R.WRONG_UPSTREAM, f"following {upstream}", target=upstream)
    return Decision(G.REPLICATE, R.STREAMING, f"no action: replicating from {upstream}", upstream)


def _upstream(view: ClusterView, local: LocalState, leader: str) -> str:
    wanted = (local.tags or {}).get("replicatefrom")
    if isinstance(wanted, str) and wanted and wanted != local.name:
        m = view.member(wanted)
        if m is not None and m.state == "running" and m.conn_url:
            return wanted
    return leader


def _host_of(conn_url: str) -> str | None:
    """host:port of a postgres:// URL, as the replica's conninfo would hold it."""
    rest = conn_url.split("://", 1)[-1]
    hostport = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return hostport or None
