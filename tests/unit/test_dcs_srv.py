"""etcd by DNS SRV records (Patroni's `srv`, Spilo's ETCD*_DISCOVERY_DOMAIN): the agent's stub
resolver against a stand-in DNS server on 127.0.0.1 (tests/harness/dns.py; no real name
server with our records can run here), and the backends looking the records up again when
no known host answers."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.dns import DnsStandIn  # noqa: E402
from harness.ports import Reservation  # noqa: E402

from howdah.dcs import open_backend, srv  # noqa: E402
from howdah.dcs.base import DcsError  # noqa: E402


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[DnsStandIn]:
    with DnsStandIn() as server:
        monkeypatch.setenv("HOWDAH_DNS_SERVERS", server.address)
        yield server


def test_records_by_priority_then_weight(dns: DnsStandIn) -> None:
    dns.records["_etcd-client._tcp.example.test"] = [(20, 0, 2379, "c.example.test"),
                                                     (10, 5, 2381, "b.example.test"),
                                                     (10, 50, 2380, "a.example.test.")]
    assert srv.query("_etcd-client._tcp.example.test") == [
        ("a.example.test", 2380), ("b.example.test", 2381), ("c.example.test", 2379)]
    assert srv.query("_etcd-client._tcp.nothing.test") == []  # NXDOMAIN


def test_ssl_records_first_and_the_suffix(dns: DnsStandIn) -> None:
    dns.records["_etcd-client._tcp.example.test"] = [(0, 0, 2379, "plain.example.test")]
    assert srv.discover("example.test") == ("http", [("plain.example.test", 2379)])
    dns.records["_etcd-client-ssl._tcp.example.test"] = [(0, 0, 2379, "tls.example.test")]
    assert srv.discover("example.test.") == ("https", [("tls.example.test", 2379)])
    dns.records["_etcd-client-blue._tcp.example.test"] = [(0, 0, 2379, "blue.example.test")]
    assert srv.discover("example.test", "-blue") == ("http", [("blue.example.test", 2379)])
    assert srv.discover("none.test") == ("http", [])


def test_no_name_server_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    port = Reservation().take()  # nothing answers there
    monkeypatch.setenv("HOWDAH_DNS_SERVERS", f"127.0.0.1:{port}")
    with pytest.raises(srv.SrvError):
        srv.query("_etcd-client._tcp.example.test", timeout=0.3)


@pytest.mark.parametrize("kind", ["etcd3", "etcd"])
def test_a_backend_looks_the_records_up_again_when_no_host_answers(
        dns: DnsStandIn, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setattr(srv, "RETRY_AFTER", 0.0)
    ports = Reservation()
    dead1, dead2 = ports.take(), ports.take()  # no etcd there: connections are refused
    name = "_etcd-client._tcp.example.test"
    backend = open_backend(kind, {"srv": "example.test"}, "/service/", "c", "n1", 1.0)
    with pytest.raises(DcsError) as info:  # no records at start: an error, not a crash
        backend.get_cluster()
    assert "no SRV record" in str(info.value) and name in str(info.value)
    dns.records[name] = [(0, 0, dead1, "127.0.0.1")]
    with pytest.raises(DcsError) as info:  # found on the next call; that host is down
        backend.get_cluster()
    assert f"127.0.0.1:{dead1}" in str(info.value) and "SRV example.test" in str(info.value)
    dns.records[name] = [(0, 0, dead2, "127.0.0.1")]  # the member was replaced
    asked = len(dns.questions)
    with pytest.raises(DcsError):  # fails on the host known so far, then asks DNS again
        backend.get_cluster()
    assert len(dns.questions) > asked
    with pytest.raises(DcsError) as info:
        backend.get_cluster()
    assert f"127.0.0.1:{dead2}" in str(info.value)
    ports.release()


def test_rendered_srv_is_a_valid_agent_section() -> None:
    from howdah.config.load import validate

    base = {"scope": "c", "name": "n", "restapi": {"listen": "127.0.0.1:8008"},
            "postgresql": {"data_dir": "/tmp/x", "listen": "127.0.0.1:5432", "authentication": {
                "superuser": {"username": "postgres"}, "replication": {"username": "standby"}}}}
    validate({**base, "etcd3": {"srv": "example.test"}})
