"""Timelines: the cluster's timeline from /history, and whether this node's
data left the leader's history (diverged).  Pure."""
from __future__ import annotations

from typing import Any, Iterable, Sequence


def cluster_timeline(history: Sequence[Sequence[Any]]) -> int:
    """The timeline the cluster is on according to the /history key: one past
    the last recorded switch; 0 when there is no usable history (nothing to
    check against), as Patroni reads it."""
    if not history:
        return 0
    try:
        return int(history[-1][0]) + 1
    except (IndexError, TypeError, ValueError):
        return 0


def behind_cluster(timeline: int, history: Sequence[Sequence[Any]]) -> bool:
    """check_timeline: a member on `timeline` (0: unknown) is behind the timeline
    /history says the cluster reached, so it missed a promotion (or never
    followed it) and must not be promoted: neither in a race for a free lock
    nor as a switchover or failover candidate."""
    return timeline <= 0 or timeline < cluster_timeline(history)


def parse_lsn(text: str) -> int:
    high, low = text.strip().split("/")
    return (int(high, 16) << 32) + int(low, 16)


def parse_history_file(text: str) -> list[tuple[int, int]]:
    """(parent timeline, switch point) of each line of a timeline history
    file (`1	0/3000060	no recovery target specified`)."""
    out: list[tuple[int, int]] = []
    for line in text.splitlines():
        fields = line.strip().split()
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        try:
            out.append((int(fields[0]), parse_lsn(fields[1])))
        except ValueError:
            continue
    return out


def diverged(in_recovery: bool, local_tli: int, local_lsn: int, leader_tli: int,
             switches: Iterable[tuple[int, int]]) -> bool:
    """Whether this data directory holds WAL the leader's timeline does not:
    then it cannot stream from the leader until rewound or cloned again.

    `local_lsn` is the minimum recovery point of a replica, or the shutdown
    checkpoint of a former primary stopped cleanly.  A replica is fine while
    it has not replayed past the switch point off its timeline.  A former
    primary is fine when its shutdown checkpoint (its last record) starts
    before the switch point: the new leader then received that whole record."""
    if local_tli > leader_tli:
        return True
    if local_tli == leader_tli:
        return False
    for parent, switch in switches:
        if parent == local_tli:
            return local_lsn > switch if in_recovery else local_lsn >= switch
        if parent > local_tli:
            return True  # our timeline is not in the leader's history
    return True
