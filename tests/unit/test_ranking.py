"""Candidate ranking as data."""
from howdah.core.ranking import Candidate, better_peers, rank


def c(name: str, tl: int = 1, rx: int = 100, rp: int = 100, prio: int = 1,
      reachable: bool = True, eligible: bool = True) -> Candidate:
    return Candidate(name, reachable, eligible, tl, rx, rp, prio)


def test_rank_order() -> None:
    cands = [c("unreach", tl=9, reachable=False), c("inelig", tl=9, eligible=False),
             c("low", rx=50, rp=50), c("tl2", tl=2, rx=10, rp=10), c("prio", prio=5),
             c("b"), c("a"), c("rx-more-rp-less", rx=100, rp=90)]
    assert [x.name for x in rank(cands)] == [
        "tl2", "prio", "a", "b", "rx-more-rp-less", "low", "inelig", "unreach"]


def test_better_peers_ignores_ties_and_ineligible() -> None:
    me = c("me")
    assert better_peers(me, [c("same"), c("x", rx=200, eligible=False),
                             c("y", rx=200, reachable=False)]) == []
    assert [p.name for p in better_peers(me, [c("ahead", rx=101, rp=101)])] == ["ahead"]
    assert [p.name for p in better_peers(me, [c("prio", prio=2)])] == ["prio"]
