"""The etcd v2 backend against a real etcd: key layout, CAS, host failover, watches."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from harness import EtcdServer
from howdah.dcs.base import DcsError
from howdah.dcs.etcd2 import EtcdV2

pytestmark = [pytest.mark.local, pytest.mark.own_dcs]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dcs(server: EtcdServer, name: str, hosts: str | None = None) -> EtcdV2:
    return EtcdV2({"hosts": hosts or server.host_port}, "/service/", "t", name, 1.0)


def test_key_layout_and_compare_and_swap(etcd_server: EtcdServer) -> None:
    a, b = dcs(etcd_server, "a"), dcs(etcd_server, "b")
    assert a.acquire_leader(10) and not b.acquire_leader(10)
    assert a.renew_leader(10) and not b.renew_leader(10)
    assert etcd_server.get("/service/t/leader") == "a"
    a.touch_member({"role": "primary", "conn_url": "postgres://h:1/postgres"}, 10)
    assert json.loads(etcd_server.get("/service/t/members/a") or "{}")["role"] == "primary"
    assert a.take_initialize() and not b.take_initialize()
    assert a.set_initialize("123")
    assert a.write_config({"ttl": 30}, None) and not b.write_config({"ttl": 20}, None)
    a.write_status(42, {"b": 40})
    view = b.get_cluster()
    assert (view.leader.name if view.leader else None, view.initialize) == ("a", "123")
    assert (view.optime, dict(view.slots), view.config["ttl"]) == (42, {"b": 40}, 30)
    assert [m.name for m in view.members] == ["a"]
    assert not b.release_leader() and a.release_leader()
    assert b.get_cluster().leader is None


def test_abandoned_initialize_is_cleared_by_index(etcd_server: EtcdServer) -> None:
    a, b = dcs(etcd_server, "a"), dcs(etcd_server, "b")
    assert a.take_initialize()
    view = b.get_cluster()
    assert view.initialize == "" and view.initialize_index
    assert b.clear_initialize(view.initialize_index)
    assert b.get_cluster().initialize is None


def test_evict_only_an_unrenewed_leader(etcd_server: EtcdServer) -> None:
    a, b = dcs(etcd_server, "a"), dcs(etcd_server, "b")
    assert a.acquire_leader(30)
    stale = b.get_cluster().leader
    assert stale is not None
    assert a.renew_leader(30)
    assert not b.evict_leader(stale.name, stale.index), "a renewed lock must survive"
    fresh = b.get_cluster().leader
    assert fresh is not None and b.evict_leader(fresh.name, fresh.index)


def test_a_dead_host_is_skipped(etcd_server: EtcdServer) -> None:
    a = dcs(etcd_server, "a", hosts=f"127.0.0.1:{free_port()},{etcd_server.host_port}")
    assert a.acquire_leader(10)
    assert a.get_cluster().leader is not None
    dead = dcs(etcd_server, "a", hosts=f"127.0.0.1:{free_port()}")
    with pytest.raises(DcsError):
        dead.get_cluster()


def test_watch_wakes_on_expiry_not_on_renewal(etcd_server: EtcdServer) -> None:
    a, b = dcs(etcd_server, "a"), dcs(etcd_server, "b")
    assert a.acquire_leader(2)
    view = b.get_cluster()
    renewer_stop = threading.Event()

    def renew() -> None:
        while not renewer_stop.wait(0.5):
            a.renew_leader(2)

    t = threading.Thread(target=renew, daemon=True)
    t.start()
    started = time.monotonic()
    assert not b.watch_leader(view, 2.5), "renewals by the same leader must not wake a watcher"
    assert time.monotonic() - started >= 2.0
    renewer_stop.set()
    t.join()
    view = b.get_cluster()
    assert b.watch_leader(view, 30), "expiry of the lock must wake the watcher"


def test_frozen_etcd_fails_within_the_request_timeout(etcd_server: EtcdServer) -> None:
    a = dcs(etcd_server, "a")
    a.get_cluster()
    etcd_server.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(DcsError):
            a.get_cluster()
        assert time.monotonic() - started < 10, "one attempt per request, no hidden retries"
    finally:
        etcd_server.thaw()


def test_request_timeout_can_change(etcd_server: EtcdServer) -> None:
    a = dcs(etcd_server, "a")
    a.set_timeout(3.0)  # a DCS config with another retry_timeout applies on the fly
    assert a.get_cluster() is not None
