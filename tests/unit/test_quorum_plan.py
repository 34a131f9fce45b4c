"""Quorum commit planning: every step keeps promotion safe, and the target is reached."""
from __future__ import annotations

import itertools
import random

from howdah.core.quorum import Key, Ssn, plan, safe, target

NODES = ("a", "b", "c", "d")


def subsets() -> list[frozenset[str]]:
    return [frozenset(c) for r in range(len(NODES) + 1) for c in itertools.combinations(NODES, r)]


def safe_states() -> list[tuple[Key, Ssn]]:
    out = []
    for v in subsets():
        for q in range(0, max(1, len(v))):
            for s in subsets():
                for k in range(0, len(s) + 1):
                    if (k == 0) != (not s):
                        continue
                    if safe(Key(q, v), Ssn(k, s)):
                        out.append((Key(q, v), Ssn(k, s)))
    return out


def apply(key: Key, ssn: Ssn, step: object) -> tuple[Key, Ssn]:
    new_key = getattr(step, "key") or key
    new_ssn = getattr(step, "ssn") or ssn
    assert (getattr(step, "key") is None) != (getattr(step, "ssn") is None), "one change a step"
    return new_key, new_ssn


def test_safe_matches_the_overlap_rule() -> None:
    assert safe(Key(1, frozenset("ab")), Ssn(1, frozenset("ab")))
    assert not safe(Key(0, frozenset("ab")), Ssn(1, frozenset("ab")))
    assert safe(Key(0, frozenset("ab")), Ssn(2, frozenset("ab")))
    assert not safe(Key(0, frozenset("a")), Ssn(0))
    assert not safe(Key(0, frozenset("a")), Ssn(star=True))
    assert safe(Key(), Ssn())


def test_every_step_from_every_safe_state_is_safe_and_the_target_is_reached() -> None:
    states = safe_states()
    assert len(states) > 100
    for (key, ssn), active in itertools.product(states, [frozenset(), frozenset("a"),
                                                         frozenset("ab"), frozenset("bcd")]):
        for wanted in (1, 2):
            k, s = key, ssn
            for _ in range(8):
                step = plan(k, s, active, caught_up=NODES, wanted=wanted, strict=False)
                if step is None:
                    break
                k, s = apply(k, s, step)
                assert safe(k, s), (key, ssn, active, wanted, step)
            assert (k, s) == target(active, wanted, False), (key, ssn, active, wanted, k, s)


def test_random_walks_with_standbys_coming_and_going_stay_safe() -> None:
    rng = random.Random(10)
    for _ in range(3000):
        key, ssn = Key(), Ssn()
        for _ in range(12):
            active = frozenset(n for n in NODES if rng.random() < 0.6)
            caught = frozenset(n for n in NODES if rng.random() < 0.7)
            step = plan(key, ssn, active, caught, rng.choice((1, 2, 3)), rng.random() < 0.3)
            if step is None:
                continue
            new_key, new_ssn = apply(key, ssn, step)
            assert safe(new_key, new_ssn)
            if step.key is not None and new_key.voters:
                assert ssn.star or len(ssn.names & caught) >= ssn.k, "key moved before catch-up"
            key, ssn = new_key, new_ssn


def test_key_waits_until_the_standbys_caught_up() -> None:
    step = plan(Key(), Ssn(1, frozenset("ab")), "ab", caught_up=(), wanted=1, strict=False)
    assert step is None
    step = plan(Key(), Ssn(1, frozenset("ab")), "ab", caught_up="a", wanted=1, strict=False)
    assert step is not None and step.key == Key(1, frozenset("ab"))


def test_changing_synchronous_node_count_goes_in_the_safe_order() -> None:
    both = frozenset("ab")
    # up: numsync first, then the quorum down
    step = plan(Key(1, both), Ssn(1, both), both, both, wanted=2, strict=False)
    assert step is not None and step.ssn == Ssn(2, both)
    step = plan(Key(1, both), Ssn(2, both), both, both, wanted=2, strict=False)
    assert step is not None and step.key == Key(0, both)
    # down: quorum up first, then numsync
    step = plan(Key(0, both), Ssn(2, both), both, both, wanted=1, strict=False)
    assert step is not None and step.key == Key(1, both)
    step = plan(Key(1, both), Ssn(2, both), both, both, wanted=1, strict=False)
    assert step is not None and step.ssn == Ssn(1, both)


def test_strict_without_standbys_blocks_commits() -> None:
    step = plan(Key(), Ssn(), (), (), wanted=1, strict=True)
    assert step is not None and step.ssn == Ssn(star=True)
