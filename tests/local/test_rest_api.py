"""The REST API's views and actions on a live 3-node Howdah cluster.

One cluster (Basic authentication configured) is shared by the tests of this
module, which run in file order; each leaves the cluster healthy.  The config
tests come last: they change the dynamic configuration under the agents.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from harness import AgentNode, LocalCluster
from harness.web import request
from harness.waiting import wait_for

pytestmark = pytest.mark.local
USER, PASSWORD = "admin", "s3cret"
TOKEN = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def call(node: AgentNode, method: str, path: str, body: Any = None,
         auth: bool = True, timeout: float = 60, raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Authorization": TOKEN} if auth else {}
    if raw is not None:
        import urllib.request
        import urllib.error
        req = urllib.request.Request(node.api_url + path, data=raw, method=method,
                                     headers={**headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
    return request(node.api_url + path, method, body, timeout, headers)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(3, ttl=20, loop_wait=2, retry_timeout=5, scope="rest",
                      extra={"restapi": {"authentication": {"username": USER,
                                                            "password": PASSWORD}}}) as c:
        c.wait_leader(180)
        c.wait_streaming(2, 300)
        yield c


def healthy(c: LocalCluster) -> AgentNode:
    leader = c.wait_leader(120)
    c.wait_streaming(2, 300)
    return leader


def test_cluster_view(cluster: LocalCluster) -> None:
    leader = healthy(cluster)

    def settled() -> Any:
        # member keys follow the replicas' own cycles: wait until every replica has reported
        code, doc = call(leader, "GET", "/cluster", auth=False)
        members = doc.get("members", []) if code == 200 else []
        ok = len(members) == 3 and all("timeline" in m for m in members) and \
            all(m.get("state") == "streaming" for m in members if m.get("role") == "replica")
        return doc if ok else None
    doc = wait_for("every member in /cluster with its final state", settled, timeout=60)
    assert doc["scope"] == "rest"
    roles = {m["name"]: m["role"] for m in doc["members"]}
    assert roles[leader.name] == "leader"
    assert sorted(r for n, r in roles.items() if n != leader.name) == ["replica", "replica"]
    for m in doc["members"]:
        node = cluster.node(m["name"])
        assert m["host"] == "127.0.0.1" and m["port"] == node.pg_port
        assert m["api_url"] == f"{node.api_url}/patroni"
        assert m["timeline"] == 1
        if m["role"] == "replica":
            assert m["state"] == "streaming"
            assert isinstance(m["lag"], int) or m["lag"] == "unknown"
        else:
            assert m["state"] == "running"
    assert "pause" not in doc and "scheduled_switchover" not in doc


def test_history_config_metrics(cluster: LocalCluster) -> None:
    leader = healthy(cluster)
    assert call(leader, "GET", "/history", auth=False) == (200, [])
    code, config = call(leader, "GET", "/config", auth=False)
    assert code == 200 and config["ttl"] == 20 and config["loop_wait"] == 2
    code, text = call(leader, "GET", "/metrics", auth=False)
    assert code == 200
    labels = f'{{name="{leader.name}",scope="rest"}}'
    for line in ("patroni_postgres_running", "patroni_primary", "patroni_postgres_timeline"):
        assert f"{line}{labels} 1.0" in text
    assert f"patroni_replica{labels} 0.0" in text and "howdah_lease_valid" in text


@pytest.mark.parametrize("method,path", [
    ("POST", "/switchover"), ("POST", "/failover"), ("POST", "/restart"), ("DELETE", "/restart"),
    ("POST", "/reload"), ("POST", "/reinitialize"), ("PATCH", "/config"), ("PUT", "/config"),
    ("DELETE", "/switchover"),
])
def test_mutating_requests_need_authentication(cluster: LocalCluster, method: str, path: str) -> None:
    import urllib.request
    import urllib.error
    node = cluster.nodes[0]
    req = urllib.request.Request(node.api_url + path, data=b"{}", method=method)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401
    assert err.value.headers["WWW-Authenticate"] == 'Basic realm="Howdah"'
    req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:wrong").decode())
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401


@pytest.mark.parametrize("path", ["/switchover", "/failover", "/restart", "/reinitialize", "/config"])
@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b"\xff\xfe", b'"text"', b"42"])
def test_malformed_bodies_are_400(cluster: LocalCluster, path: str, raw: bytes) -> None:
    method = "PATCH" if path == "/config" else "POST"
    code, text = call(cluster.nodes[1], method, path, raw=raw)
    assert code == 400, text
    assert "Traceback" not in text and text


def test_switchover_checks(cluster: LocalCluster) -> None:
    leader = healthy(cluster)
    other = next(n for n in cluster.nodes if n is not leader)
    cases = [
        ({"leader": other.name, "candidate": leader.name}, 412, "leader name does not match"),
        ({"leader": leader.name, "candidate": "nobody"}, 412, "candidate does not exists"),
        ({"leader": leader.name, "candidate": leader.name}, 400, "target and source are the same"),
        ({"candidate": other.name}, 400, "only from a specific leader"),
        ({"leader": leader.name, "scheduled_at": "2030-01-01T10:00:00"}, 400, "Timezone"),
        ({"leader": leader.name, "scheduled_at": "yesterday"}, 422, "Unable to parse"),
        ({"leader": 5}, 400, "leader must be a string"),
    ]
    for body, code, text in cases:
        got = call(leader, "POST", "/switchover", body)
        assert got[0] == code and text in got[1], (body, got)
    got = call(leader, "POST", "/failover", {"candidate": leader.name})
    assert got[0] == 400 and "already the leader" in got[1]
    got = call(leader, "POST", "/failover", {})
    assert got[0] == 400
    assert call(leader, "POST", "/failover", {"candidate": "nobody"})[0] == 412
    assert cluster.dcs_key("leader") == leader.name


def test_scheduled_switchover_and_cancel(cluster: LocalCluster) -> None:
    leader = healthy(cluster)
    other = next(n for n in cluster.nodes if n is not leader)
    when = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    code, text = call(leader, "POST", "/switchover",
                      {"leader": leader.name, "candidate": other.name, "scheduled_at": when})
    assert (code, text) == (202, "Switchover scheduled")
    code, doc = call(other, "GET", "/cluster", auth=False)
    assert doc["scheduled_switchover"] == {"at": when, "from": leader.name, "to": other.name}
    assert call(other, "DELETE", "/switchover") == (200, "scheduled switchover deleted")
    assert call(other, "DELETE", "/switchover") == (404, "no switchover is scheduled")
    assert json.loads(cluster.dcs_key("failover") or "{}") == {}
    assert cluster.dcs_key("leader") == leader.name


def test_switchover_and_failover(cluster: LocalCluster) -> None:
    leader = healthy(cluster)
    target = sorted(n.name for n in cluster.nodes if n is not leader)[0]
    code, text = call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": target})
    assert (code, text) == (200, f'Successfully switched over to "{target}"')
    new = healthy(cluster)
    assert new.name == target
    back = leader.name
    # the demoted leader is a candidate once it is a healthy replica in its own answers and in
    # its member key (before that Patroni answers 412 too)
    def ready() -> bool:
        members = call(leader, "GET", "/cluster", auth=False)[1].get("members", [])
        mine = next((m for m in members if m.get("name") == back), {})
        return leader.api("/replica")[0] == 200 and mine.get("role") == "replica" \
            and mine.get("state") in ("running", "streaming")
    wait_for("the old leader a healthy replica", ready, timeout=120)
    code, text = call(leader, "POST", "/failover", {"candidate": back})
    assert (code, text) == (200, f'Successfully failed over to "{back}"')
    assert healthy(cluster).name == back
    code, history = call(leader, "GET", "/history", auth=False)
    assert [h[0] for h in history] == [1, 2] and history[-1][4] == back


def test_scheduled_switchover_happens_on_time(cluster: LocalCluster) -> None:
    leader = healthy(cluster)
    target = sorted(n.name for n in cluster.nodes if n is not leader)[-1]
    when = datetime.now(timezone.utc) + timedelta(seconds=5)
    code, text = call(leader, "POST", "/switchover", {"leader": leader.name, "candidate": target,
                                                      "scheduled_at": when.isoformat()})
    assert (code, text) == (202, "Switchover scheduled")
    assert cluster.dcs_key("leader") == leader.name
    new = cluster.wait_leader(120, exclude=[leader.name])
    assert new.name == target and datetime.now(timezone.utc) >= when
    healthy(cluster)
    assert "scheduled_switchover" not in call(new, "GET", "/cluster", auth=False)[1]


def test_restart(cluster: LocalCluster) -> None:
    leader = healthy(cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    code, text = call(replica, "POST", "/restart", {"role": "primary"})
    assert (code, text) == (503, "restart conditions are not satisfied")
    assert call(replica, "POST", "/restart", {"role": "boss"})[0] == 400
    assert call(replica, "POST", "/restart", {"bogus": 1})[0] == 400
    before = replica.api("/patroni")[1]["postmaster_start_time"]
    code, text = call(replica, "POST", "/restart", {"role": "replica"}, timeout=300)
    assert code == 200, text
    # the status snapshot follows within a cycle (on a loaded machine not always at once)
    wait_for("the new postmaster_start_time in /patroni",
             lambda: replica.api("/patroni")[1].get("postmaster_start_time") not in (None, before), timeout=60)
    when = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    assert call(replica, "POST", "/restart", {"schedule": when}) == (202, "Restart scheduled")
    assert call(replica, "POST", "/restart", {"schedule": when})[0] == 409
    members = call(replica, "GET", "/cluster", auth=False)[1]["members"]
    assert next(m for m in members if m["name"] == replica.name)["scheduled_restart"]["schedule"] == when
    assert call(replica, "DELETE", "/restart") == (200, "scheduled restart deleted")
    assert call(replica, "DELETE", "/restart") == (404, "no restarts are scheduled")
    healthy(cluster)


def test_reload_and_reinitialize(cluster: LocalCluster) -> None:
    leader = healthy(cluster)
    replica = next(n for n in cluster.nodes if n is not leader)
    assert call(replica, "POST", "/reload") == (202, "reload scheduled")
    code, text = call(leader, "POST", "/reinitialize", {"force": True})
    assert code == 503 and "leader" in text
    wait_for("the reload to be done", lambda: call(replica, "POST", "/reinitialize", {})[0] == 200, 60)
    wait_for("the replica back streaming", lambda: replica.name in cluster.streaming(leader), 300)


def test_patch_and_put_config(cluster: LocalCluster) -> None:
    node = cluster.nodes[0]
    original = call(node, "GET", "/config", auth=False)[1]
    code, doc = call(node, "PATCH", "/config", {"postgresql": {"parameters": {"work_mem": "6MB"}},
                                                 "maximum_lag_on_failover": None})
    assert code == 200
    assert doc["postgresql"]["parameters"]["work_mem"] == "6MB"
    assert doc["postgresql"]["parameters"]["max_connections"] == 50  # merged, not replaced
    assert "maximum_lag_on_failover" not in doc
    assert json.loads(cluster.dcs_key("config") or "{}") == doc
    code, text = call(node, "PATCH", "/config", {"loop_wait": "thirty"})
    assert code == 400 and "loop_wait" in text
    code, doc = call(node, "PUT", "/config", original)
    assert code == 200 and doc == original
    assert json.loads(cluster.dcs_key("config") or "{}") == original
    healthy(cluster)


def test_pause_and_resume(cluster: LocalCluster) -> None:
    node = cluster.nodes[2]
    assert call(node, "PATCH", "/config", {"pause": True})[0] == 200
    wait_for("pause on every node", lambda: all(
        n.api("/patroni")[1].get("pause") is True for n in cluster.nodes), 60)
    assert call(node, "GET", "/cluster", auth=False)[1]["pause"] is True
    code, doc = call(node, "PATCH", "/config", {"pause": None})
    assert code == 200 and "pause" not in doc
    wait_for("no pause", lambda: all(not n.api("/patroni")[1].get("pause") for n in cluster.nodes), 60)
    healthy(cluster)
