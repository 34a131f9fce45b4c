"""Parsing of peers' GET /patroni answers."""
from howdah.agent.peers import parse_peer


def test_parse_peer_reads_replica_and_primary_positions() -> None:
    p = parse_peer("b", {"state": "running", "role": "replica", "timeline": 2,
                         "xlog": {"received_location": 200, "replayed_location": 150}})
    assert (p.reachable, p.running, p.timeline, p.received, p.replayed) == (True, True, 2, 200, 150)
    q = parse_peer("c", {"state": "running", "role": "primary", "xlog": {"location": 300}})
    assert q.wal_position == 300
    assert not parse_peer("d", ["junk"]).reachable
