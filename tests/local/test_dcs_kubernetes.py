"""The Kubernetes backend: Patroni's object layout, resourceVersion compare-and-swap and the
pod role label that a Service selecting `spilo-role=master` follows.

The API server here is tests/harness/kubeapi.py, a STAND-IN: no real kube-apiserver can run on
this host. It implements the subset the backend uses (get/list/watch/create/patch/delete of
endpoints, configmaps and pods, resourceVersion preconditions answered with 409). The shared
DCS contract (test_dcs_contract.py) runs against it too.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness import LocalCluster
from harness.kubeapi import KubeApiStandIn
from harness.ports import Reservation
from harness.proxy import TcpProxy
from harness.waiting import wait_for
from howdah.dcs import open_backend
from howdah.dcs.base import Dcs, DcsError

pytestmark = [pytest.mark.local, pytest.mark.own_dcs]
NS = "db"
SPILO = {"labels": {"application": "spilo"}, "scope_label": "cluster-name", "role_label": "spilo-role",
         "leader_label_value": "master", "follower_label_value": "replica",
         "standby_leader_label_value": "master"}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeApiStandIn]:
    with KubeApiStandIn(token="s3cret") as server:
        monkeypatch.setenv("KUBECONFIG", server.kubeconfig(tmp_path / "kubeconfig", NS))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield server


def member(api: KubeApiStandIn, name: str, scope: str, **section: Any) -> Dcs:
    api.put_pod(NS, name, {"application": "spilo", "cluster-name": scope})
    return open_backend("kubernetes", {**SPILO, **section}, "/service/", scope, name, 2.0)


def annotations(obj: dict[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def role_label(api: KubeApiStandIn, pod: str) -> str | None:
    return ((api.get("pods", NS, pod) or {}).get("metadata", {}).get("labels") or {}).get("spilo-role")


def test_configmap_layout_as_patroni_writes_it(api: KubeApiStandIn) -> None:
    a, b = member(api, "pg-0", "pg"), member(api, "pg-1", "pg")
    assert a.take_initialize() and a.set_initialize("7301234567890")
    assert a.write_config({"ttl": 30, "loop_wait": 10}, None)
    assert a.acquire_leader(30)
    a.write_status(5000, {"pg_1": 4000})
    a.touch_member({"role": "primary", "state": "running", "conn_url": "postgres://10.0.0.1:5432/postgres"}, 30)
    b.touch_member({"role": "replica", "state": "streaming"}, 30)
    assert a.write_sync("pg-0", ("pg-1",), None) and a.write_failover({"member": "pg-1"})
    assert api.names("configmaps", NS) == ["pg-config", "pg-failover", "pg-leader", "pg-sync"]
    leader = annotations(api.get("configmaps", NS, "pg-leader"))
    assert {"leader", "acquireTime", "renewTime", "ttl", "transitions", "optime", "slots"} <= set(leader)
    assert (leader["leader"], leader["ttl"], leader["optime"], json.loads(leader["slots"])) == (
        "pg-0", "30", "5000", {"pg_1": 4000})
    config = annotations(api.get("configmaps", NS, "pg-config"))
    assert config["initialize"] == "7301234567890" and json.loads(config["config"]) == {"ttl": 30, "loop_wait": 10}
    assert annotations(api.get("configmaps", NS, "pg-sync")) == {"leader": "pg-0", "sync_standby": "pg-1"}
    assert annotations(api.get("configmaps", NS, "pg-failover")) == {"member": "pg-1"}
    for name in api.names("configmaps", NS):
        labels = api.get("configmaps", NS, name)["metadata"]["labels"]
        assert labels == {"application": "spilo", "cluster-name": "pg"}
    status = json.loads(annotations(api.get("pods", NS, "pg-0"))["status"])
    assert status["role"] == "primary" and role_label(api, "pg-0") == "master"
    assert role_label(api, "pg-1") == "replica"
    view = b.get_cluster()
    assert view.leader is not None and view.leader.name == "pg-0" and view.optime == 5000
    assert [m.name for m in view.members] == ["pg-0", "pg-1"] and view.initialize == "7301234567890"


def test_endpoints_hold_the_leader_address_for_a_service_without_selector(api: KubeApiStandIn) -> None:
    ports = [{"name": "postgresql", "port": 5432}]
    a = member(api, "pg-0", "pg", use_endpoints=True, pod_ip="10.0.0.1", ports=ports)
    b = member(api, "pg-1", "pg", use_endpoints=True, pod_ip="10.0.0.2", ports=ports)
    assert a.write_config({"ttl": 30}, None) and a.acquire_leader(30)
    ep = api.get("endpoints", NS, "pg")
    assert annotations(ep)["leader"] == "pg-0"
    assert ep["subsets"] == [{"addresses": [{"ip": "10.0.0.1", "targetRef": {
        "kind": "Pod", "namespace": NS, "name": "pg-0"}}], "ports": ports}]
    assert api.get("services", NS, "pg-config") is not None, "the -config Endpoints need their Service"
    assert a.hand_leader("pg-1", 30) and b.renew_leader(30)
    ep = api.get("endpoints", NS, "pg")
    assert annotations(ep)["leader"] == "pg-1" and annotations(ep)["transitions"] == "1"
    assert ep["subsets"][0]["addresses"][0]["ip"] == "10.0.0.2"
    assert b.release_leader()
    assert api.get("endpoints", NS, "pg")["subsets"] == [], "no leader: the Service routes nowhere"


def test_a_stale_resource_version_is_refused_with_409(api: KubeApiStandIn) -> None:
    a, b = member(api, "pg-0", "pg"), member(api, "pg-1", "pg")
    assert a.acquire_leader(30)
    stale = b.get_cluster().leader
    assert stale is not None
    before = api.requests
    assert a.renew_leader(30)
    assert not b.evict_leader(stale.name, stale.index)
    assert api.requests > before
    assert b.get_cluster().leader.name == "pg-0"


def test_the_role_label_follows_the_leader(api: KubeApiStandIn) -> None:
    a, b = member(api, "pg-0", "pg"), member(api, "pg-1", "pg")
    primary = {"role": "primary", "state": "running"}
    replica = {"role": "replica", "state": "streaming"}

    def selected() -> list[str]:  # what a Service selecting spilo-role=master routes to
        return [n for n in api.names("pods", NS) if role_label(api, n) == "master"]

    assert a.acquire_leader(30)
    a.touch_member(primary, 30)
    b.touch_member(replica, 30)
    assert selected() == ["pg-0"] and role_label(api, "pg-1") == "replica"
    assert a.hand_leader("pg-1", 30) and b.renew_leader(30)
    a.touch_member({"role": "replica", "state": "stopped"}, 30)  # demoting
    b.touch_member(primary, 30)
    assert selected() == ["pg-1"] and role_label(api, "pg-0") is None
    a.touch_member(replica, 30)
    assert role_label(api, "pg-0") == "replica"
    b.touch_member({"role": "standby_leader", "state": "running"}, 30)
    assert role_label(api, "pg-1") == "master"


def test_bad_token_and_missing_pod_are_one_line_errors(api: KubeApiStandIn, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    a = open_backend("kubernetes", {**SPILO, "token": "wrong"}, "/service/", "pg", "pg-0", 2.0)
    with pytest.raises(DcsError) as info:
        a.get_cluster()
    assert "401" in str(info.value) and "RBAC" in str(info.value) and "\n" not in str(info.value)
    b = open_backend("kubernetes", SPILO, "/service/", "pg", "nopod", 2.0)
    with pytest.raises(DcsError) as info:
        b.touch_member({"role": "replica", "state": "running"}, 30)
    assert "no pod 'nopod'" in str(info.value)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(DcsError) as info:
        open_backend("kubernetes", SPILO, "/service/", "pg", "pg-0", 2.0)
    assert "KUBECONFIG" in str(info.value)


def test_a_howdah_cluster_on_the_kubernetes_api_fails_over_and_relabels(tmp_path: Path) -> None:
    """Two real agents and PostgreSQL servers whose only DCS is the stand-in API server."""
    with KubeApiStandIn(token="cluster-token") as api, LocalCluster(
            2, ttl=20, loop_wait=2, retry_timeout=5, scope="kube", start_agents=False,
            extra={"etcd": None, "etcd3": None, "kubernetes": {**SPILO, "namespace": NS}}) as cluster:
        for node in cluster.nodes:
            api.put_pod(NS, node.name, {"application": "spilo", "cluster-name": "kube"})
            kube = node.workdir / ".kube"
            kube.mkdir(parents=True, exist_ok=True)
            api.kubeconfig(kube / "config", NS)
            shutil.chown(kube, "postgres", "postgres") if os.geteuid() == 0 else None
            shutil.chown(kube / "config", "postgres", "postgres") if os.geteuid() == 0 else None
        cluster.start_agents()
        try:
            def leader() -> str | None:
                names = [n.name for n in cluster.nodes if n.api("/primary")[0] == 200]
                return names[0] if len(names) == 1 else None

            first = wait_for("a leader", leader, 240)
            other = next(n for n in cluster.nodes if n.name != first)
            wait_for("the replica streaming", lambda: other.api("/replica")[0] == 200, 300)
            wait_for("role labels", lambda: (role_label(api, first), role_label(api, other.name)) == (
                "master", "replica"), 60)
            assert annotations(api.get("configmaps", NS, "kube-leader"))["leader"] == first
            before, started = api.requests, time.monotonic()
            time.sleep(10)
            rate = (api.requests - before) / (time.monotonic() - started)
            print(f"idle 2-node cluster, loop_wait 2: {rate:.1f} API requests/s")
            assert rate < 60, f"{rate:.0f} requests/s: an idle cluster must not poll in a busy loop"
            cluster.node(first).kill9()
            wait_for("the replica taking over", lambda: other.api("/primary")[0] == 200, 180)
            wait_for("its label", lambda: role_label(api, other.name) == "master", 60)
            assert annotations(api.get("configmaps", NS, "kube-leader"))["leader"] == other.name
            cluster.node(first).start()
            wait_for("the old leader rejoining as a replica", lambda: cluster.node(first).api("/replica")[0] == 200
                     and role_label(api, first) == "replica", 300)
            assert [n for n in api.names("pods", NS) if role_label(api, n) == "master"] == [other.name]
        except BaseException:
            print(cluster.dump_logs(80))
            raise


@pytest.mark.patroni
def test_patronictl_reads_the_objects_a_howdah_member_writes(api: KubeApiStandIn, tmp_path: Path,
                                                              patroni_venv: Path) -> None:
    """Real patronictl 4.1.5 (its own Kubernetes client) lists what the backend wrote."""
    import subprocess

    a, b = member(api, "pg-0", "pg"), member(api, "pg-1", "pg")
    assert a.take_initialize() and a.set_initialize("7301234567890")
    assert a.write_config({"ttl": 30, "loop_wait": 10, "retry_timeout": 10}, None) and a.acquire_leader(30)
    a.touch_member({"role": "primary", "state": "running", "conn_url": "postgres://10.0.0.1:5432/postgres",
                    "api_url": "http://10.0.0.1:8008/patroni", "timeline": 1, "xlog_location": 100}, 30)
    b.touch_member({"role": "replica", "state": "streaming", "conn_url": "postgres://10.0.0.2:5432/postgres",
                    "api_url": "http://10.0.0.2:8008/patroni", "timeline": 1}, 30)
    config = tmp_path / "ctl.yml"
    config.write_text(json.dumps({"scope": "pg", "kubernetes": {**SPILO, "namespace": NS, "context": "stand-in"}}))
    res = subprocess.run([str(patroni_venv / "bin" / "patronictl"), "-c", str(config), "list", "-f", "json"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {r["Member"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {"pg-0", "pg-1"}, rows
    assert (rows["pg-0"]["Role"], rows["pg-0"]["State"]) == ("Leader", "running")
    assert (rows["pg-1"]["Role"], rows["pg-1"]["State"]) == ("Replica", "streaming")
    assert rows["pg-0"]["Host"] == "10.0.0.1"


def _service_in_front(api: KubeApiStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      servers: list[tuple[str, int]]) -> tuple[TcpProxy, Reservation]:
    """A TCP proxy standing for the `kubernetes` Service (the kubeconfig's server goes through
    it), and the Endpoints `default/kubernetes` listing `servers` (ip, port) behind it."""
    ports = Reservation()
    proxy = TcpProxy(ports.take(), int(api.url.rsplit(":", 1)[1])).start()
    path = tmp_path / "kubeconfig-service"
    doc = json.loads(Path(api.kubeconfig(path, NS)).read_text())
    doc["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{proxy.listen_port}"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("KUBECONFIG", str(path))
    body = {"metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": ip} for ip, _ in servers[:1]],
                         "ports": [{"name": "https", "port": servers[0][1], "protocol": "TCP"}]}]
            + [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
               for ip, port in servers[1:]]}
    req = urllib.request.Request(api.url + "/api/v1/namespaces/default/endpoints", json.dumps(body).encode(),
                                 {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
    return proxy, ports


def test_bypass_api_service_talks_to_the_api_servers_behind_the_service(
        api: KubeApiStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As Patroni: with bypass_api_service the member reads the `kubernetes` Service's
    endpoints once through the Service, then asks those API servers directly (the first one
    listed here refuses connections: the next one is used), so it keeps working when the
    Service address stops answering; without it the same loss is a DCS error."""
    dead = Reservation().take()  # nothing listens there
    real = int(api.url.rsplit(":", 1)[1])
    proxy, ports = _service_in_front(api, tmp_path, monkeypatch, [("127.0.0.1", dead), ("127.0.0.1", real)])
    try:
        direct = member(api, "pg-0", "pg", bypass_api_service=True)
        through = member(api, "pg-1", "pg", bypass_api_service="false")  # PATRONI_KUBERNETES_* form
        direct.get_cluster()
        through.get_cluster()
        proxy.refuse()  # the Service address is gone; the API servers are not
        assert direct.take_initialize() and direct.acquire_leader(30)
        direct.touch_member({"role": "primary", "state": "running"}, 30)
        view = direct.get_cluster()
        assert view.leader is not None and view.leader.name == "pg-0"
        assert direct.renew_leader(30)
        assert annotations(api.get("configmaps", NS, "pg-leader"))["leader"] == "pg-0"
        assert role_label(api, "pg-0") == "master"
        started = time.monotonic()
        assert direct.watch_leader(view, 1.0) is False  # a watch straight to the API server too
        assert time.monotonic() - started >= 0.5
        with pytest.raises(DcsError) as info:
            through.get_cluster()
        assert "unreachable" in str(info.value) and "\n" not in str(info.value)
    finally:
        proxy.close()
        ports.release()


def test_bypass_api_service_falls_back_to_the_service_without_its_endpoints(
        api: KubeApiStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No readable `default/kubernetes` Endpoints (absent here; RBAC may refuse it too): the
    member goes on through the Service address, as without bypass_api_service."""
    real = int(api.url.rsplit(":", 1)[1])
    proxy, ports = _service_in_front(api, tmp_path, monkeypatch, [("127.0.0.1", real)])
    try:
        with api.cond:
            api.objects.pop(("endpoints", "default", "kubernetes"))
        a = member(api, "pg-0", "pg", bypass_api_service=True)
        assert a.take_initialize() and a.acquire_leader(30)
        assert a.get_cluster().leader is not None
        proxy.refuse()
        with pytest.raises(DcsError):
            a.get_cluster()
    finally:
        proxy.close()
        ports.release()
