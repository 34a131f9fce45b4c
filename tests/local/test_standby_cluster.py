"""A standby cluster: its leader replicates from another cluster's primary."""
from __future__ import annotations

import json
from typing import Callable

import pytest

from harness import LocalCluster
from harness.waiting import wait_for

pytestmark = pytest.mark.local




def test_standby_cluster_follows_fails_over_and_is_promoted(
        local_cluster: Callable[..., LocalCluster]) -> None:
    main = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3, scope="main")
    primary = main.wait_leader(180)
    main.wait_streaming(2, 300)
    primary.sql("CREATE TABLE shipped (v text)")
    primary.sql("INSERT INTO shipped VALUES ('before the standby cluster')")

    standby = local_cluster(2, ttl=8, loop_wait=1, retry_timeout=3, scope="standby", extra={
        "bootstrap": {"dcs": {"standby_cluster": {"host": "127.0.0.1",
                                                  "port": primary.pg_port}}}})
    sleader = wait_for("a standby leader", lambda: next(
        (n for n in standby.nodes if n.api("/standby-leader")[0] == 200), None))
    assert sleader.role() == "standby_leader"
    assert standby.primaries() == [], "a standby cluster has no primary"
    other = next(n for n in standby.nodes if n is not sleader)
    wait_for("the cascading replica", lambda: other.role() == "replica")
    primary.sql("INSERT INTO shipped VALUES ('after')")
    for node in standby.nodes:
        wait_for(f"rows on {node.name}", lambda n=node: n.sql(
            "SELECT count(*) FROM shipped") == [(2,)])
        assert not node.is_writable()

    sleader.kill9()
    # /standby-leader follows the lock at once; the role in /patroni within a cycle
    wait_for("a new standby leader", lambda: other.api("/standby-leader")[0] == 200
             and other.role() == "standby_leader")
    primary.sql("INSERT INTO shipped VALUES ('after the standby failover')")
    wait_for("rows on the new standby leader",
             lambda: other.sql("SELECT count(*) FROM shipped") == [(3,)])

    assert standby.etcd is not None
    dcs = standby.dcs_client(scope="standby")
    view = dcs.get_cluster()
    config = {k: v for k, v in view.config.items() if k != "standby_cluster"}
    assert dcs.write_config(config, view.config_index)
    wait_for("the standby cluster promoted", lambda: other.is_writable())
    wait_for("role primary", lambda: other.role() == "primary", 30)
    assert other.api("/primary")[0] == 200
    assert json.loads(standby.dcs_key("config") or "{}").get("standby_cluster") is None
