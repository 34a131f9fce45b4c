"""The DCS contract: every backend behind howdah.dcs passes the same tests.

Each backend is one entry in SERVERS: a context manager that starts the real
server (or, where none can run here, a stand-in that says so) and yields
``open(name, scope) -> Dcs``.  Adding a backend is adding one entry; every
test below then runs against it.  The tests speak only the Dcs protocol and
the key layout (read_nodes), never a backend's internals.
"""
from __future__ import annotations

import itertools
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator

import pytest

from harness import EtcdServer, wait_until
from harness.kubeapi import KubeApiStandIn
from howdah.dcs import open_backend
from howdah.dcs.base import Dcs

pytestmark = [pytest.mark.local, pytest.mark.own_dcs]

Opener = Callable[[str, str], Dcs]


@contextmanager
def etcd_v2() -> Iterator[Opener]:
    with EtcdServer(v2=True) as server:
        yield lambda name, scope: open_backend(
            "etcd", {"hosts": server.host_port}, "/service/", scope, name, 2.0)


@contextmanager
def etcd_v3() -> Iterator[Opener]:
    with EtcdServer(v2=False) as server:
        yield lambda name, scope: open_backend(
            "etcd3", {"hosts": server.host_port}, "/service/", scope, name, 2.0)


def kubernetes(use_endpoints: bool) -> Callable[[], ContextManager[Opener]]:
    """The Kubernetes backend against tests/harness/kubeapi.py: a STAND-IN for the API server
    (no real kube-apiserver can run on this host). Each member's pod is created first, as the
    StatefulSet would; the backend reaches the stand-in through a kubeconfig, as out of cluster."""
    @contextmanager
    def server() -> Iterator[Opener]:
        with tempfile.TemporaryDirectory() as tmp, KubeApiStandIn(token="t0ken") as api:
            old = os.environ.get("KUBECONFIG")
            os.environ["KUBECONFIG"] = api.kubeconfig(os.path.join(tmp, "kubeconfig"), "db")
            section = {"labels": {"application": "howdah"}, "use_endpoints": use_endpoints,
                       "pod_ip": "10.0.0.1", "ports": [{"name": "postgresql", "port": 5432}]}

            def opener(name: str, scope: str) -> Dcs:
                api.put_pod("db", name, {"application": "howdah", "cluster-name": scope})
                return open_backend("kubernetes", section, "/service/", scope, name, 2.0)
            try:
                yield opener
            finally:
                if old is None:
                    os.environ.pop("KUBECONFIG", None)
                else:
                    os.environ["KUBECONFIG"] = old
    return server


SERVERS: dict[str, Callable[[], ContextManager[Opener]]] = {
    "etcd": etcd_v2,
    "etcd3": etcd_v3,
    "kubernetes-configmaps": kubernetes(False),
    "kubernetes-endpoints": kubernetes(True),
}
_scopes = itertools.count()


@pytest.fixture(scope="module", params=sorted(SERVERS))
def backend(request: pytest.FixtureRequest) -> Iterator[Opener]:
    with SERVERS[request.param]() as opener:
        yield opener


@pytest.fixture
def pair(backend: Opener) -> tuple[Dcs, Dcs]:
    """Two members, a and b, of a fresh cluster (a scope of its own)."""
    scope = f"c{next(_scopes)}"
    return backend("a", scope), backend("b", scope)


def leader_of(dcs: Dcs) -> str | None:
    view = dcs.get_cluster()
    return view.leader.name if view.leader else None


def test_leader_acquire_renew_release_by_compare_and_swap(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    assert a.acquire_leader(30) and not b.acquire_leader(30)
    assert a.renew_leader(30) and not b.renew_leader(30)
    assert leader_of(b) == "a"
    nodes, _ = b.read_nodes()
    assert nodes["leader"][0] == "a", "the leader key holds the member name, plain text"
    assert not b.release_leader() and leader_of(a) == "a"
    assert a.release_leader()
    assert leader_of(b) is None
    assert b.acquire_leader(30) and leader_of(a) == "b"


def test_leader_key_expires_after_its_ttl(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    assert a.acquire_leader(2)
    wait_until(lambda: leader_of(b) is None, timeout=60, what="leader key expired")
    assert not a.renew_leader(2), "an expired lock cannot be renewed, only acquired again"
    assert b.acquire_leader(30)


def test_evict_only_an_unrenewed_leader_and_hand_over(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    assert a.acquire_leader(30)
    stale = b.get_cluster().leader
    assert stale is not None
    time.sleep(0.05)
    assert a.renew_leader(30)
    assert not b.evict_leader(stale.name, stale.index), "a renewed lock must survive"
    fresh = b.get_cluster().leader
    assert fresh is not None and b.evict_leader(fresh.name, fresh.index)
    assert leader_of(a) is None
    assert a.acquire_leader(30) and a.hand_leader("b", 30)
    assert leader_of(a) == "b"
    assert b.renew_leader(30) and not a.renew_leader(30)


def test_member_keys_carry_json_and_expire(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    data = {"role": "primary", "state": "running", "conn_url": "postgres://h:5432/postgres",
            "api_url": "http://h:8008/patroni", "xlog_location": 7, "timeline": 2,
            "version": "4.1.5", "tags": {"nofailover": False}}
    a.touch_member(data, 30)
    b.touch_member({"role": "replica", "state": "running"}, 2)
    view = a.get_cluster()
    assert [m.name for m in view.members] == ["a", "b"]
    ma = view.member("a")
    assert ma is not None and (ma.role, ma.timeline, ma.xlog_location) == ("primary", 2, 7)
    nodes, _ = a.read_nodes()
    assert json.loads(nodes["members/a"][0] or "{}") == data
    a.touch_member({**data, "state": "stopped"}, 30)  # a rewrite keeps one key
    if a.capabilities.member_expiry:
        wait_until(lambda: [m.name for m in a.get_cluster().members] == ["a"], timeout=60,
                   what="member b's key expired")
    else:  # Kubernetes: a member lasts as long as its pod; b leaves by deleting its state
        b.delete_member()
        assert [m.name for m in a.get_cluster().members] == ["a"]
    member = a.get_cluster().member("a")
    assert member is not None and member.state == "stopped"
    a.delete_member()
    assert a.get_cluster().members == ()


def test_initialize_race_has_one_winner(backend: Opener) -> None:
    scope = f"c{next(_scopes)}"
    racers = [backend(f"m{i}", scope) for i in range(4)]
    wins: list[str] = []
    go = threading.Barrier(len(racers))

    def race(dcs: Dcs, name: str) -> None:
        go.wait()
        if dcs.take_initialize():
            wins.append(name)

    threads = [threading.Thread(target=race, args=(d, f"m{i}")) for i, d in enumerate(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(wins) == 1
    winner = racers[int(wins[0][1:])]
    view = winner.get_cluster()
    assert view.initialize == "" and view.initialize_index is not None
    assert winner.set_initialize("7301234567890")
    assert racers[0].get_cluster().initialize == "7301234567890"


def test_abandoned_initialize_is_cleared_by_its_index(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    assert a.take_initialize()
    view = b.get_cluster()
    assert view.initialize == "" and view.initialize_index is not None
    assert b.clear_initialize(view.initialize_index)
    assert b.get_cluster().initialize is None
    assert b.take_initialize()


def test_config_by_compare_and_swap(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    assert a.write_config({"ttl": 30, "loop_wait": 10}, None)
    assert not b.write_config({"ttl": 20}, None), "create only if absent"
    view = b.get_cluster()
    assert view.config == {"ttl": 30, "loop_wait": 10} and view.config_index is not None
    assert a.write_config({"ttl": 40}, view.config_index)
    assert not b.write_config({"ttl": 50}, view.config_index), "a stale index must fail"
    assert b.get_cluster().config == {"ttl": 40}


def test_sync_failover_history_status_failsafe_keys(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    assert a.write_sync("a", ("b",), None)
    assert not b.write_sync("b", (), None)
    view = b.get_cluster()
    assert (view.sync_leader, view.sync_standbys) == ("a", ("b",))
    assert view.sync_index is not None
    assert a.write_sync("a", (), view.sync_index)
    assert not b.write_sync("b", ("a",), view.sync_index)
    assert b.get_cluster().sync_standbys == ()
    assert a.delete_sync() and b.get_cluster().sync_leader is None
    assert a.write_sync("a", ("b",), None), "a deleted sync key can be created again"

    assert a.write_failover({"leader": "a", "member": "b"})
    assert b.get_cluster().failover == {"leader": "a", "member": "b"}
    assert a.clear_failover() and b.get_cluster().failover == {}
    nodes, _ = b.read_nodes()
    assert nodes["failover"][0] == "{}", "cleared the way Patroni clears it"

    history = [[1, 25165824, "no recovery target specified", "2026-12-03T00:00:00+00:00", "a"]]
    a.write_history(history)
    assert b.get_cluster().history == tuple(tuple(h) for h in history)
    a.write_status(1234, {"b": 1000})
    view = b.get_cluster()
    assert (view.optime, dict(view.slots)) == (1234, {"b": 1000})
    a.write_failsafe({"a": "http://h:8008/patroni", "b": "http://h2:8008/patroni"})
    nodes, _ = b.read_nodes()
    assert json.loads(nodes["failsafe"][0] or "{}") == {
        "a": "http://h:8008/patroni", "b": "http://h2:8008/patroni"}
    assert set(nodes) >= {"sync", "failover", "history", "status", "failsafe"}


def test_watch_wakes_on_expiry_and_release_not_on_renewal(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    assert a.acquire_leader(3)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(0.5):
            a.renew_leader(3)

    t = threading.Thread(target=renew, daemon=True)
    t.start()
    try:
        assert not b.watch_leader(b.get_cluster(), 3.5), \
            "renewals by the same leader must not wake a watcher"
    finally:
        stop.set()
        t.join()
    assert b.watch_leader(b.get_cluster(), 60), "expiry of the lock must wake the watcher"
    assert leader_of(b) is None
    assert a.acquire_leader(30)
    view = b.get_cluster()
    woke: list[bool] = []
    watcher = threading.Thread(target=lambda: woke.append(b.watch_leader(view, 60)))
    watcher.start()
    time.sleep(0.5)
    assert a.release_leader()
    watcher.join(70)
    assert woke == [True], "a released lock must wake the watcher"


def test_wipe_deletes_every_key_of_the_cluster(pair: tuple[Dcs, Dcs]) -> None:
    a, b = pair
    assert a.acquire_leader(30) and a.write_config({"ttl": 30}, None)
    a.touch_member({"role": "primary"}, 30)
    assert b.wipe()
    nodes, _ = b.read_nodes()
    assert nodes == {}
    assert not b.wipe(), "nothing left to wipe"


def test_capabilities_are_flags(backend: Opener) -> None:
    dcs = backend("a", f"c{next(_scopes)}")
    caps = dcs.capabilities
    assert isinstance(caps.leases, bool) and isinstance(caps.watch_expiry, bool)
    assert dcs.prefix.endswith(f"/c{next(_scopes) - 1}") and dcs.where
