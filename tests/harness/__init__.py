"""Test harness: real etcd, PostgreSQL and HA agents (howdah or patroni) on 127.0.0.1.

Used by tests/local (the local test tier) and by bench/. Typical use:

    with LocalCluster(3, kind="patroni", ttl=20, loop_wait=2, retry_timeout=5) as c:
        leader = c.wait_leader()
        c.wait_streaming()          # n-1 replicas streaming from the leader
        with c.writer_probe() as probe:
            leader.kill9()
            ...
"""
from .cluster import LocalCluster, sweep_stale
from .config import KINDS, NodeSpec, Timing, agent_command, agent_config, deep_merge
from .etcd import EtcdServer
from .node import AgentNode
from .ports import Reservation
from .probe import WriterProbe, Write
from .tls import CertPair, TestCA
from .waiting import wait_until

__all__ = [
    "AgentNode", "CertPair", "EtcdServer", "KINDS", "LocalCluster", "NodeSpec", "Reservation",
    "TestCA", "Timing", "Write", "WriterProbe", "agent_command", "agent_config", "deep_merge",
    "sweep_stale", "wait_until",
]
