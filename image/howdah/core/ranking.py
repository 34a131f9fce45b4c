"""Candidate ranking for the leader race, as one sort key."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from howdah.core.models import PeerStatus, failover_allowed, priority_of


@dataclass(frozen=True)
class Candidate:
    name: str
    reachable: bool
    eligible: bool
    timeline: int
    received: int
    replayed: int
    priority: int

    def strength(self) -> tuple[int, int, int, int]:
        """What makes a candidate better, name excluded."""
        return (self.timeline, max(self.received, self.replayed), self.replayed, self.priority)


def sort_key(c: Candidate) -> tuple[bool, bool, int, int, int, int, str]:
    """Best first when used with reverse=False: negate everything numeric."""
    return (
        not c.reachable,
        not c.eligible,
        -c.timeline,
        -max(c.received, c.replayed),
        -c.replayed,
        -c.priority,
        c.name,
    )


def rank(candidates: Iterable[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=sort_key)


def from_peer(peer: PeerStatus) -> Candidate:
    eligible = peer.reachable and peer.running and failover_allowed(peer.tags)
    return Candidate(
        name=peer.name,
        reachable=peer.reachable,
        eligible=eligible,
        timeline=peer.timeline,
        received=peer.received,
        replayed=peer.replayed,
        priority=priority_of(peer.tags),
    )


def better_peers(me: Candidate, peers: Iterable[Candidate]) -> list[Candidate]:
    """Reachable, eligible peers strictly better than me.

    Equal peers do not stop me: both race and the DCS compare-and-swap picks
    one.  A higher failover_priority wins a tie in WAL position.
    """
    mine = me.strength()
    return [p for p in peers if p.reachable and p.eligible and p.strength() > mine]
