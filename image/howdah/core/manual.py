"""Switchover and manual failover, driven by the DCS `failover` key."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

from howdah.core.models import ClusterView, LocalState, PeerStatus, failover_allowed
from howdah.core.ranking import from_peer, rank
from howdah.core.settings import Settings
from howdah.core.timeline import behind_cluster
from howdah.core.transitions import Decision, Goal, Reason

G, R = Goal, Reason


def scheduled_at(failover: Mapping[str, Any]) -> float | None:
    """Epoch seconds of `scheduled_at`, None when absent or unparsable."""
    raw = failover.get("scheduled_at")
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def due(failover: Mapping[str, Any], wall: float) -> bool:
    when = scheduled_at(failover)
    return when is None or wall >= when


def healthy_candidates(view: ClusterView, local: LocalState, peers: Sequence[PeerStatus],
                       settings: Settings) -> list[PeerStatus]:
    """Replicas that may take over from this (healthy) leader now.

    No lag limit here: the leader stops with a fast shutdown, whose walsenders
    ship every last record to the connected replicas, and the executor checks
    afterwards that the target received the shutdown checkpoint (a replica
    that reconnected a moment ago reports a position up to a segment behind
    on an idle primary).  With check_timeline, a replica whose timeline is
    behind the cluster's (/history) is not a candidate: it may replay a
    timeline that diverged from the leader's, and promoting it would drop
    the leader's writes since the switch.
    """
    result = []
    for p in peers:
        c = from_peer(p)
        if not (c.reachable and c.eligible and p.role == "replica"):
            continue
        if settings.synchronous_mode and view.sync_leader and p.name not in view.sync_standbys:
            continue  # in synchronous mode only a synchronous standby has every commit
        if not p.running:
            continue
        if settings.check_timeline and behind_cluster(p.timeline, view.history):
            continue  # as Patroni: a candidate behind the cluster's timeline is not healthy
        result.append(p)
    return result


def leader_handover(view: ClusterView, local: LocalState, peers: Sequence[PeerStatus],
                    settings: Settings) -> Decision | None:
    """On a healthy leader: hand the lock over if a due switchover asks for it."""
    fo = view.failover
    if not fo:
        return None
    me = local.name
    wanted_leader, member = fo.get("leader"), fo.get("member")
    if wanted_leader and wanted_leader != me:
        return Decision(G.LEAD_CLEAR_FAILOVER, R.FAILOVER_STALE,
                        f"clearing a switchover meant for leader {wanted_leader}")
    if member == me:
        return Decision(G.LEAD_CLEAR_FAILOVER, R.FAILOVER_DONE, "switchover target is already leader")
    if not due(fo, local.wall):
        return None
    healthy = healthy_candidates(view, local, peers, settings)
    if member:
        if not any(p.name == member for p in healthy):
            return Decision(G.LEAD_CLEAR_FAILOVER, R.CANDIDATE_UNHEALTHY,
                            f"switchover cancelled: {member} is not a healthy replica")
        target = str(member)
    else:
        if not healthy:
            return Decision(G.LEAD_CLEAR_FAILOVER, R.NO_CANDIDATE,
                            "switchover cancelled: no healthy replica to take over")
        target = rank(from_peer(p) for p in healthy)[0].name
    return Decision(G.HAND_OVER, R.SWITCHOVER, f"switching over to {target}", target=target)


def manual_race(view: ClusterView, local: LocalState,
                peers: Sequence[PeerStatus] | None = None) -> Decision | None:
    """No leader and a failover key naming a member: only that member races.

    With ``peers`` (not in pause), as Patroni: when the named member is not
    a reachable member allowed to fail over (it died after the request), the
    others fall back to the ordinary race (None), the former leader of a
    switchover staying out of it while another member can take over.
    """
    member = view.failover.get("member") if view.failover else None
    if not member or not due(view.failover, local.wall):
        return None
    if member == local.name:
        return Decision(G.RACE, R.MANUAL_FAILOVER, "manual failover to me: taking the lock")
    if peers is None:
        return Decision(G.STAY_BEHIND, R.MANUAL_FAILOVER, f"manual failover to {member}: not racing")
    named = next((p for p in peers if p.name == member), None)
    if named is not None and from_peer(named).reachable and failover_allowed(named.tags):
        return Decision(G.STAY_BEHIND, R.MANUAL_FAILOVER, f"manual failover to {member}: not racing")
    former = view.failover.get("leader")
    if former == local.name and any(
            p.name != member and from_peer(p).eligible for p in peers):
        return Decision(G.STAY_BEHIND, R.MANUAL_FAILOVER,
                        f"manual failover to {member}, which is not healthy: another member "
                        "takes over, not the former leader")
    return None
