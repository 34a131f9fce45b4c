"""synchronous_mode: acknowledged writes are never lost, only a sync standby takes over."""
from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from harness import LocalCluster
from harness.waiting import wait_for

pytestmark = pytest.mark.local




def test_only_the_synchronous_standby_takes_over(local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3,
                      extra={"bootstrap": {"dcs": {"synchronous_mode": True}}})
    leader = c.wait_leader(180)
    c.wait_streaming(2, 300)

    def sync_key() -> dict[str, Any]:
        return json.loads(c.dcs_key("sync") or "{}")
    wait_for("a synchronous standby in the sync key", lambda: sync_key().get("sync_standby"))
    key = sync_key()
    assert key["leader"] == leader.name
    sync_name = key["sync_standby"]
    rows = leader.sql("SELECT application_name, sync_state FROM pg_stat_replication")
    assert (sync_name, "sync") in rows
    wait_for(f"/sync on {sync_name}", lambda: c.node(sync_name).api("/sync")[0] == 200, 30)
    others = [n for n in c.nodes if n.name not in (sync_name, leader.name)]
    assert all(n.api("/async")[0] == 200 for n in others)
    leader.sql("CREATE TABLE acked (v int)")
    leader.sql("INSERT INTO acked SELECT generate_series(1, 100)")
    leader.kill9()
    new = c.wait_leader(120, exclude=[leader.name])
    assert new.name == sync_name, "only the synchronous standby may take over"
    assert new.sql("SELECT count(*) FROM acked") == [(100,)]
