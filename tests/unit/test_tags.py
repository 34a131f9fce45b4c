"""Tags as Patroni 4.1.5 reads and publishes them (observed side by side in
tests/local/test_conformance_misc.py): default-false boolean tags are not
published, nofailover/nosync win a conflict with their priority tag."""
from __future__ import annotations

from typing import Any

import pytest

from howdah.agent.state import Memory, member_json
from howdah.core.models import PgStatus, failover_allowed, priority_of, public_tags, tag_conflicts
from howdah.core.sync import nosync, sync_priority

ALL_FALSE = {"clonefrom": False, "nofailover": False, "noloadbalance": False,
             "nosync": False, "nostream": False, "custom": False}


@pytest.mark.parametrize("tags,shown", [
    (ALL_FALSE, {"custom": False}),  # what Patroni published for these tags
    ({"nofailover": False, "failover_priority": 0, "clonefrom": True},
     {"nofailover": False, "failover_priority": 0, "clonefrom": True}),
    ({"nofailover": True, "failover_priority": 5}, {"nofailover": True, "failover_priority": 5}),
    ({"nosync": False, "sync_priority": 2}, {"nosync": False, "sync_priority": 2}),
    ({"nosync": False}, {}),
    ({}, {}),
])
def test_public_tags(tags: dict[str, Any], shown: dict[str, Any]) -> None:
    assert public_tags(tags) == shown


def test_member_json_leaves_out_default_false_tags() -> None:
    data = member_json("n1", "postgres://x/", "http://x/patroni", Memory(), PgStatus(),
                       ALL_FALSE, False, False, None)
    assert data["tags"] == {"custom": False}
    assert "tags" not in member_json("n1", "", "", Memory(), PgStatus(),
                                     {"nofailover": False}, False, False, None)


@pytest.mark.parametrize("tags,allowed,priority", [
    ({}, True, 1),
    ({"nofailover": True}, False, 0),
    ({"failover_priority": 0}, False, 0),
    ({"failover_priority": 3}, True, 3),
    ({"nofailover": False, "failover_priority": 0}, True, 0),  # nofailover decides
    ({"nofailover": True, "failover_priority": 5}, False, 0),
    ({"failover_priority": "x"}, True, 1),
])
def test_nofailover_wins_a_conflict(tags: dict[str, Any], allowed: bool, priority: int) -> None:
    assert failover_allowed(tags) is allowed
    assert priority_of(tags) == priority


@pytest.mark.parametrize("tags,never,priority", [
    ({}, False, 1),
    ({"nosync": True, "sync_priority": 5}, True, 0),
    ({"nosync": False, "sync_priority": 0}, False, 0),
    ({"sync_priority": 0}, True, 0),
])
def test_nosync_wins_a_conflict(tags: dict[str, Any], never: bool, priority: int) -> None:
    assert nosync(tags) is never
    assert sync_priority(tags) == priority


def test_conflicts_are_named_as_patroni_logs_them() -> None:
    assert tag_conflicts({"nofailover": False, "failover_priority": 0}) == [
        "Conflicting configuration between nofailover: False and failover_priority: 0. "
        "Defaulting to nofailover: False"]
    assert tag_conflicts({"nofailover": True, "failover_priority": 5}) == [
        "Conflicting configuration between nofailover: True and failover_priority: 5. "
        "Defaulting to nofailover: True"]
    assert tag_conflicts({"nosync": True, "sync_priority": 1})[0].startswith(
        "Conflicting configuration between nosync: True and sync_priority: 1.")
    assert tag_conflicts({"nofailover": True, "failover_priority": 0}) == []
    assert tag_conflicts({"failover_priority": 0}) == []


def test_dynamic_cache_is_written_in_the_data_directory_on_change(tmp_path: Any) -> None:
    import json
    import os

    from howdah.agent.state import DynamicCache
    cache = DynamicCache(tmp_path)
    assert not cache.save({"ttl": 20})  # no cluster in the directory yet
    (tmp_path / "PG_VERSION").write_text("15\n")
    assert cache.save({"ttl": 20, "postgresql": {"parameters": {"max_connections": 50}}})
    doc = json.loads((tmp_path / "patroni.dynamic.json").read_text())
    assert doc["ttl"] == 20 and doc["loop_wait"] == 10 and doc["postgresql"]["parameters"]
    assert os.stat(tmp_path / "patroni.dynamic.json").st_mode & 0o777 == 0o600
    assert not cache.save({"ttl": 20, "postgresql": {"parameters": {"max_connections": 50}}})
    assert cache.save({"ttl": 25})
    assert [p.name for p in tmp_path.iterdir()] .count("patroni.dynamic.json") == 1
    assert len(list(tmp_path.iterdir())) == 2
