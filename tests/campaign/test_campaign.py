"""The short fault campaign (issue 10): Howdah only, a few seeded faults per
mode, asserting only safety: no acknowledged write lost in synchronous modes,
never two nodes committing writes or answering /primary 200 in one probe round, and no
inactive slot left that nobody will use (issue 11).
Figures (stalls, Patroni beside Howdah, every fault) come from bench/campaign.py."""
from __future__ import annotations

import sys

import pytest

from engine import Campaign

pytestmark = pytest.mark.local

FAST = {"ttl": 8, "loop_wait": 1, "retry_timeout": 3, "gap": 1.0}


def run(mode: str, faults: list[str]) -> None:
    result = Campaign("howdah", mode, seed=10, faults=faults,
                      log=lambda s: sys.stderr.write(s + "\n"), **FAST).run()
    sys.stderr.write(result.summary() + "\n")
    assert result.acked > 0, "the writers never got a write acknowledged"
    assert result.split_commit_rounds == 0, f"two nodes took writes at once: {result.summary()}"
    assert result.split_api_rounds == 0, f"two nodes answered /primary 200: {result.summary()}"
    assert not result.stale_slots, f"inactive slots nobody will use: {result.summary()}"
    if mode != "async":
        assert not result.lost, f"acknowledged writes lost: {result.lost[:20]} ({result.summary()})"


def test_async_hung_and_killed_leader_agents_never_give_two_primaries() -> None:
    run("async", ["sigstop_leader_agent", "kill9_leader_agent"])


def test_sync_faults_lose_no_acknowledged_write() -> None:
    run("sync", ["node_loss", "partition_leader_drop"])


def test_quorum_faults_lose_no_acknowledged_write() -> None:
    run("quorum", ["node_loss", "partition_leader_reject"])
