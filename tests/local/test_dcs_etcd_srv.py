"""ETCD3_DISCOVERY_DOMAIN / Patroni's `srv` against a real etcd (v2 API off): the agent's
backend finds etcd through SRV records served by the stand-in DNS server of the tests
(tests/harness/dns.py), and finds it again when the records move to another member."""
from __future__ import annotations

import pytest

from harness import EtcdServer
from harness.dns import DnsStandIn
from harness.ports import Reservation
from howdah.dcs import open_backend, srv
from howdah.dcs.base import DcsError

pytestmark = [pytest.mark.local, pytest.mark.own_dcs]


def test_etcd3_found_by_srv_and_found_again_after_a_move(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv, "RETRY_AFTER", 0.0)
    ports = Reservation()
    dead = ports.take()
    with DnsStandIn() as dns, EtcdServer(v2=False) as etcd:
        monkeypatch.setenv("HOWDAH_DNS_SERVERS", dns.address)
        name = "_etcd-client._tcp.etcd.test"
        dns.records[name] = [(0, 0, etcd.client_port, "127.0.0.1")]
        a = open_backend("etcd3", {"srv": "etcd.test"}, "/service/", "srv", "a", 2.0)
        assert a.take_initialize() and a.acquire_leader(30)
        assert a.get_cluster().leader.name == "a"
        assert etcd.get("/service/srv/leader") == "a"
        dns.records[name] = [(0, 0, dead, "127.0.0.1")]  # a second member, wrongly, then
        b = open_backend("etcd3", {"srv": "etcd.test"}, "/service/", "srv", "b", 2.0)
        with pytest.raises(DcsError):
            b.get_cluster()
        dns.records[name] = [(0, 0, etcd.client_port, "127.0.0.1")]  # the records fixed
        with pytest.raises(DcsError):
            b.get_cluster()  # still the old host: fails, then asks DNS again
        view = b.get_cluster()
        assert view.leader is not None and view.leader.name == "a"
    ports.release()
