"""Quorum commit (`synchronous_mode: quorum`): the sync key and
synchronous_standby_names moved towards their target one safe step at a time.

Two pairs describe the state:

- synchronous_standby_names = 'ANY k (S)': a commit is acknowledged once k
  of the standbys in S flushed it (k = 0: no standby needed);
- the sync key: `sync_standby` (the voters V) and `quorum` (q): a candidate
  may promote only when q + 1 voters (itself included when it is one) are
  reachable and none of them is ahead of it.

An acknowledged commit is lost by a promotion only if those q + 1 voters
can all lack it.  It is on k members of S, so the worst case is an
acknowledging set that avoids V as far as it can: it holds max(0, k - |S - V|)
voters, and the rest of V, |V| - max(0, k - |S - V|) voters, may lack the
commit.  The state is safe while that number stays below q + 1 (`safe()`).
With '*' any standby may acknowledge, so only an empty V is safe.

Commits acknowledged under an earlier value of synchronous_standby_names
are on its members, not necessarily on the current S.  So the key changes
only once k members of S have flushed the WAL written up to the moment S
was last set (`caught_up`), or to an empty V (nobody may promote), which is
always safe.

Every step changes one of the two, and the pair is safe before and after
it; `plan()` returns the next step towards the target for the standbys
streaming now: S = V = active, k = min(synchronous_node_count, |active|),
q = |active| - k.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection


@dataclass(frozen=True)
class Ssn:
    """synchronous_standby_names as ANY k (names); star: '*'."""

    k: int = 0
    names: frozenset[str] = frozenset()
    star: bool = False


@dataclass(frozen=True)
class Key:
    """The sync key's quorum and voters (sync_standby)."""

    quorum: int = 0
    voters: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Step:
    key: Key | None = None
    ssn: Ssn | None = None
    detail: str = ""


def safe(key: Key, ssn: Ssn) -> bool:
    if not key.voters:
        return True
    if ssn.star:
        return False
    acked_voters = max(0, ssn.k - len(ssn.names - key.voters))
    return key.quorum >= len(key.voters) - acked_voters


def _min_quorum(voters: frozenset[str], ssn: Ssn) -> int | None:
    """The smallest safe quorum for these voters, None when only q >= |V| is."""
    if not voters:
        return 0
    if ssn.star:
        return None
    q = len(voters) - max(0, ssn.k - len(ssn.names - voters))
    return q if q < len(voters) else None


def _min_k(key: Key, names: frozenset[str]) -> int | None:
    """The smallest k for ANY k (names) that keeps the key safe."""
    for k in range(0, len(names) + 1):
        if safe(key, Ssn(k, names)):
            return k
    return None


def target(active: Collection[str], wanted: int, strict: bool) -> tuple[Key, Ssn]:
    names = frozenset(active)
    if not names:
        return Key(), Ssn(star=strict)
    k = max(1, min(wanted, len(names)))
    return Key(len(names) - k, names), Ssn(k, names)


def _fmt_key(key: Key) -> str:
    return f"quorum {key.quorum} of ({', '.join(sorted(key.voters)) or 'nobody'})"


def _fmt_ssn(ssn: Ssn) -> str:
    if ssn.star:
        return "'*'"
    return f"ANY {ssn.k} ({', '.join(sorted(ssn.names)) or 'nobody'})"


def plan(key: Key, ssn: Ssn, active: Collection[str], caught_up: Collection[str],
         wanted: int, strict: bool) -> Step | None:
    """The next safe step, or None when the target is reached (or no safe
    step exists until more standbys catch up)."""
    want_key, want_ssn = target(active, wanted, strict)
    if key == want_key and ssn == want_ssn:
        return None
    confirmed = ssn.star or len(ssn.names & frozenset(caught_up)) >= ssn.k

    def key_step(new: Key, why: str) -> Step | None:
        if new == key or not safe(new, ssn):
            return None
        if new.voters and not confirmed:
            return None
        return Step(key=new, detail=f"sync key -> {_fmt_key(new)} ({why})")

    def ssn_step(new: Ssn, why: str) -> Step | None:
        if new == ssn or not safe(key, new):
            return None
        return Step(ssn=new, detail=f"synchronous_standby_names -> {_fmt_ssn(new)} ({why})")

    steps: list[Callable[[], Step | None]] = [
        lambda: ssn_step(want_ssn, "target"),
        lambda: key_step(want_key, "target"),
    ]
    if not want_ssn.star:
        k = _min_k(key, want_ssn.names)
        if k is not None and k >= want_ssn.k:
            steps.append(lambda: ssn_step(Ssn(k, want_ssn.names), "on the way"))
    q = _min_quorum(want_key.voters, ssn)
    if q is not None and q >= want_key.quorum:
        steps.append(lambda: key_step(Key(q, want_key.voters), "on the way"))
    steps.append(lambda: key_step(Key(), "reset: nobody may promote meanwhile")
                 if key.voters else None)
    for make in steps:
        step = make()
        if step is not None:
            return step
    return None


def votes_needed(quorum: int) -> int:
    """Voters, the candidate included when it is one, that must be seen not ahead."""
    return quorum + 1
