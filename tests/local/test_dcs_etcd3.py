"""The etcd3 backend against a real etcd 3.4 with the v2 API off (--enable-v2=false).

The shared contract (test_dcs_contract.py) covers the key layout and the
compare-and-swap rules; this file covers what only etcd3 has: etcd's auth,
TLS, host failover within the request budget and keys bound to leases.
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness import EtcdServer
from harness import web
from howdah.core.models import ClusterView
from howdah.dcs import open_backend
from howdah.dcs.base import Dcs, DcsError

pytestmark = [pytest.mark.local, pytest.mark.own_dcs]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def etcd3(section: dict[str, Any], name: str = "a", scope: str = "t") -> Dcs:
    return open_backend("etcd3", section, "/service/", scope, name, 1.0)


@pytest.fixture(scope="module")
def server() -> Iterator[EtcdServer]:
    with EtcdServer(v2=False) as s:
        yield s


def test_the_v2_api_is_off_and_keys_live_in_the_v3_keyspace(server: EtcdServer) -> None:
    code, _ = web.request(server.url + "/v2/keys/", timeout=5)
    assert code == 404, "etcd runs with --enable-v2=false"
    a = etcd3({"hosts": server.host_port}, scope="layout")
    assert a.acquire_leader(30)
    a.touch_member({"role": "primary"}, 30)
    assert server.keys("/service/layout/") == {"/service/layout/leader": "a",
                                               "/service/layout/members/a": '{"role":"primary"}'}
    code, data = web.request(server.url + "/v3/kv/range", method="POST", body={
        "key": "L3NlcnZpY2UvbGF5b3V0L2xlYWRlcg=="}, timeout=5)  # /service/layout/leader
    assert code == 200 and int(data["kvs"][0]["lease"]) > 0, "the leader key is on a lease"


def test_url_proxy_and_a_dead_host_is_skipped(server: EtcdServer) -> None:
    dead = f"127.0.0.1:{free_port()}"
    a = etcd3({"hosts": f"{dead},{server.host_port}"}, scope="hosts")
    assert a.acquire_leader(10) and a.get_cluster().leader is not None
    assert etcd3({"url": server.url}, "b", "hosts").get_cluster().leader is not None
    assert etcd3({"proxy": server.url, "hosts": dead}, "b", "hosts").get_cluster().leader
    with pytest.raises(DcsError):
        etcd3({"hosts": dead}).get_cluster()


def test_a_frozen_etcd_fails_within_the_request_budget() -> None:
    with EtcdServer(v2=False) as s:
        a = etcd3({"hosts": s.host_port})
        a.get_cluster()
        s.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(DcsError):
                a.get_cluster()
            assert time.monotonic() - started < 10, "bounded by the request timeout"
            assert not a.watch_leader(ClusterView(), 1.0), "a hung watch ends at its deadline"
        finally:
            s.thaw()
        assert a.get_cluster() is not None


def test_etcd_auth_with_username_and_password() -> None:
    with EtcdServer(v2=False) as s:
        s.enable_auth("root-pw", {"howdah": ("howdah-pw", "/service/")})
        a = etcd3({"hosts": s.host_port, "username": "howdah", "password": "howdah-pw"})
        b = etcd3({"url": f"http://howdah:howdah-pw@{s.host_port}"}, "b")
        assert a.acquire_leader(10) and not b.acquire_leader(10)
        a.touch_member({"role": "primary"}, 10)
        assert [m.name for m in b.get_cluster().members] == ["a"]
        view = b.get_cluster()
        assert a.release_leader()
        assert b.watch_leader(view, 30), "the watch carries the token too"
        with pytest.raises(DcsError):
            etcd3({"hosts": s.host_port, "username": "howdah", "password": "wrong"}).get_cluster()
        with pytest.raises(DcsError):
            etcd3({"hosts": s.host_port}).acquire_leader(10)
        assert s.keys("/service/t/")["/service/t/members/a"] == '{"role":"primary"}'


@pytest.mark.skipif(subprocess.run(["which", "openssl"], capture_output=True).returncode != 0,
                    reason="needs the openssl CLI")
def test_tls_to_etcd(tmp_path: Path) -> None:
    cert, key = tmp_path / "etcd.pem", tmp_path / "etcd-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with EtcdServer(v2=False, tls=(str(cert), str(key))) as s:
        section = {"hosts": s.host_port, "protocol": "https", "cacert": str(cert)}
        a, b = etcd3(section), etcd3(section, "b")
        assert a.acquire_leader(10)
        view = b.get_cluster()
        assert view.leader is not None and view.leader.name == "a"
        assert a.release_leader() and b.watch_leader(view, 30)
        with pytest.raises(DcsError):
            etcd3({"hosts": s.host_port}).get_cluster()  # plain http to a TLS port
