"""Peer checks against real sockets on 127.0.0.1."""
import socket

from howdah.agent.peers import leader_gone, parse_peer, refuses
from howdah.core.models import Member


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refuses_only_when_nothing_listens() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        assert not refuses("127.0.0.1", srv.getsockname()[1])
    assert refuses("127.0.0.1", free_port())


def test_leader_gone_needs_both_ports_refused() -> None:
    dead_api, dead_pg = free_port(), free_port()
    m = Member("a", conn_url=f"postgres://127.0.0.1:{dead_pg}/postgres",
               api_url=f"http://127.0.0.1:{dead_api}/patroni")
    assert leader_gone(m)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        alive_pg = srv.getsockname()[1]
        m2 = Member("a", conn_url=f"postgres://127.0.0.1:{alive_pg}/postgres",
                    api_url=f"http://127.0.0.1:{dead_api}/patroni")
        assert not leader_gone(m2)


def test_parse_peer_reads_replica_and_primary_positions() -> None:
    p = parse_peer("b", {"state": "running", "role": "replica", "timeline": 2,
                         "xlog": {"received_location": 200, "replayed_location": 150}})
    assert (p.reachable, p.running, p.timeline, p.received, p.replayed) == (True, True, 2, 200, 150)
    q = parse_peer("c", {"state": "running", "role": "primary", "xlog": {"location": 300}})
    assert q.wal_position == 300
    assert not parse_peer("d", ["junk"]).reachable
