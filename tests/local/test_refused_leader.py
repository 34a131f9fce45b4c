"""A live leader whose advertised ports refuse connections keeps its lock (issue 10, item 5).

"Connection refused" does not prove a peer dead: a REJECT firewall rule,
kube-proxy without endpoints or a reused IP all answer it while the leader
runs on, renews its lock and takes writes.  Here the leader advertises a
proxy's ports (its connect_address); the test cuts the proxy so the replicas
see both ports refuse, while the leader stays reachable on its real ports.
No other node may take the lock or answer /primary 200 meanwhile.
"""
from __future__ import annotations

import time
from typing import Callable

import pytest

from harness import LocalCluster
from harness.proxy import TcpProxy

pytestmark = pytest.mark.local

# Lease timings that keep a healthy leader's lock on a loaded machine: the
# removed fast path evicted within seconds of the cut, whatever the ttl.
TIMING = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
WINDOW = 30.0


def test_refused_ports_do_not_evict_a_live_leader(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, start_agents=False, **TIMING)
    n1 = c.nodes[0]
    api_port, pg_port = c.ports.take_many(2)
    with TcpProxy(api_port, n1.api_port) as api, TcpProxy(pg_port, n1.pg_port) as pg:
        n1.config["restapi"]["connect_address"] = f"127.0.0.1:{api_port}"
        n1.config["postgresql"]["connect_address"] = f"127.0.0.1:{pg_port}"
        c.start_agents([n1])
        assert c.wait_leader(180).name == "n1"
        c.start_agents(c.nodes[1:])
        c.wait_streaming(2, 300)
        api.refuse()
        pg.refuse()
        # any eviction and promotion would show well within this window
        deadline = time.monotonic() + WINDOW
        while time.monotonic() < deadline:
            holder = c.dcs_key("leader")
            assert holder == "n1", f"the lock of the live leader n1 is now {holder!r}"
            others = [n.name for n in c.nodes[1:] if n.api("/primary")[0] == 200]
            assert not others, f"{others} answer /primary 200 beside the live leader n1"
            time.sleep(0.2)
        assert n1.is_writable(), "the leader must keep taking writes"
        api.heal()
        pg.heal()
        c.wait_streaming(2, 300)
        assert [n.name for n in c.primaries()] == ["n1"]
