"""Attacks from another container on the compose network: each must fail (issue 14).

An attacker container (the same image, no credentials) on the cluster's network tries:
the REST API's unsafe endpoints without or with wrong credentials (PATCH /config with an
archive_command, POST /restart, /reinitialize, /switchover), hostile bodies with the right
credentials (NaN, deep nesting, huge numbers, bad Content-Length), PostgreSQL without a
password and without TLS, etcd without credentials (read, write, delete, a forged token, root
by guessing, auth disable, user add) and a second container on a node's volume.  The legitimate paths
keep working: howdahctl in a node (credentials from the rendered config), the REST API with
the compose file's credentials, and HAProxy's health checks (the primary port takes writes).
"""
from __future__ import annotations

import json
import time
from typing import Any

import docker
import pytest

from .helpers import IMAGE, NODES, Project, sql, wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(900)]
API_USER, API_PASSWORD = "howdah", "howdah-demo"  # docker-compose.yml's demo credentials

ATTACKER = r'''
import base64, http.client, json, socket, sys
import psycopg2
host = sys.argv[1]
def send(address, port, method, path, body, hdrs):
    conn = http.client.HTTPConnection(address, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return [resp.status, resp.read().decode(errors="replace")[:300]]
    except Exception as exc:
        return [0, repr(exc)]
    finally:
        conn.close()
def call(method, path, body=b"", auth=None, headers=None):
    hdrs = dict(headers or {})
    if auth:
        hdrs["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return send(host, 8008, method, path, body, hdrs)
def etcd(path, body, token=None):
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = token
    return send("etcd", 2379, "POST", path, json.dumps(body), hdrs)
b64 = lambda s: base64.b64encode(s.encode()).decode()
def raw(data):
    with socket.create_connection((host, 8008), timeout=30) as sock:
        sock.sendall(data)
        return sock.recv(200).decode("latin-1").split("\r\n", 1)[0]
def pg(**kw):
    try:
        psycopg2.connect(host=host, port=5432, dbname="postgres", connect_timeout=10, **kw).close()
        return "connected"
    except psycopg2.Error as exc:
        return str(exc).strip().splitlines()[0]
evil = json.dumps({"postgresql": {"parameters": {"archive_command": "touch /tmp/pwned"}}}).encode()
good = sys.argv[2]
out = {
    "patch_config": call("PATCH", "/config", evil),
    "patch_config_wrong": call("PATCH", "/config", evil, auth="howdah:guess"),
    "put_config": call("PUT", "/config", evil),
    "restart": call("POST", "/restart", b"{}"),
    "reinitialize": call("POST", "/reinitialize", b'{"force": true}'),
    "switchover": call("POST", "/switchover", b'{"leader": "x"}'),
    "failover": call("POST", "/failover", b'{"candidate": "x"}'),
    "reload_wrong_scheme": call("POST", "/reload", b"", headers={"Authorization": "Bearer x"}),
    "nan": call("POST", "/switchover", b'{"leader": NaN}', auth=good),
    "deep": call("POST", "/switchover", b"[" * 50000 + b"]" * 50000, auth=good),
    "huge_number": call("POST", "/failover", b'{"candidate": 1e999}', auth=good),
    "not_json": call("PATCH", "/config", b"\xff\xfe", auth=good),
    "bad_length": raw(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n"),
    "two_lengths": raw(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n{}"),
    "pg_no_password": pg(user="postgres"),
    "pg_admin_no_password": pg(user="admin"),
    "pg_no_tls": pg(user="postgres", password="postgres", sslmode="disable"),
    "pg_tls": pg(user="postgres", password="postgres", sslmode="require"),
    "etcd_put_leader": etcd("/v3/kv/put", {"key": b64("/service/demo/leader"), "value": b64("evil")}),
    "etcd_put_member": etcd("/v3/kv/put", {"key": b64("/service/demo/members/evil"), "value": b64(json.dumps(
        {"conn_url": "postgres://evil:5432/postgres", "api_url": "http://evil:8008/patroni", "state": "running",
         "role": "replica", "tags": {"clonefrom": True}}))}),
    "etcd_delete_leader": etcd("/v3/kv/deleterange", {"key": b64("/service/demo/leader")}),
    "etcd_read": etcd("/v3/kv/range", {"key": b64("/service/demo/leader")}),
    "etcd_forged_token": etcd("/v3/kv/put", {"key": b64("/service/demo/leader"), "value": b64("evil")},
                              token="howdah.1"),
    "etcd_root_guess": etcd("/v3/auth/authenticate", {"name": "root", "password": "root"}),
    "etcd_auth_disable": etcd("/v3/auth/disable", {}),
    "etcd_user_add": etcd("/v3/auth/user/add", {"name": "evil", "password": "evil"}),
    "health": call("GET", "/health"),
    "config_read": call("GET", "/config"),
}
print(json.dumps(out))
'''


def attack(project: Project, target: str) -> dict[str, Any]:
    client: docker.DockerClient = project.client
    output = client.containers.run(IMAGE, entrypoint=["python3", "-c", ATTACKER, target, f"{API_USER}:{API_PASSWORD}"],
                                   network=f"{project.name}_default", remove=True, user="postgres",
                                   labels={"howdah-test": "attacker"})
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    return result


def test_attacks_from_another_container_fail(project: Project) -> None:
    leader = wait_for("a healthy cluster", project.healthy, timeout=120)
    node = project.container(leader)
    before = node.exec_run(["howdahctl", "show-config"]).output.decode()
    pid_before = node.exec_run(["head", "-1", "/home/postgres/pgdata/pgroot/data/postmaster.pid"]).output
    r = attack(project, leader)
    for key in ("patch_config", "patch_config_wrong", "put_config", "restart", "reinitialize", "switchover",
                "failover", "reload_wrong_scheme"):
        assert r[key][0] == 401, (key, r[key])
    for key in ("nan", "deep", "huge_number", "not_json"):
        assert r[key][0] == 400 and "Traceback" not in r[key][1], (key, r[key])
    assert r["bad_length"].startswith("HTTP/1.1 400"), r["bad_length"]
    assert r["two_lengths"].startswith("HTTP/1.1 400"), r["two_lengths"]
    assert "password authentication failed" in r["pg_no_password"] or "no password supplied" in r["pg_no_password"]
    assert r["pg_admin_no_password"] != "connected"
    assert "no pg_hba.conf entry" in r["pg_no_tls"] and "no encryption" in r["pg_no_tls"], r["pg_no_tls"]
    assert r["pg_tls"] == "connected", r["pg_tls"]
    assert r["health"][0] == 200 and r["config_read"][0] == 200
    # etcd: no anonymous (or forged-token) read or write, no root by guessing, auth stays on
    for key in ("etcd_put_leader", "etcd_put_member", "etcd_delete_leader", "etcd_read", "etcd_forged_token",
                "etcd_root_guess", "etcd_auth_disable", "etcd_user_add"):
        assert r[key][0] not in (0, 200), (key, r[key])
    assert wait_for("the same leader", project.healthy, timeout=120) == leader
    members = node.exec_run(["howdahctl", "list", "-f", "json"]).output.decode()
    assert "evil" not in members, members
    # nothing changed, nothing restarted, no traceback in the node's log
    assert node.exec_run(["howdahctl", "show-config"]).output.decode() == before
    assert "pwned" not in before
    assert node.exec_run(["head", "-1", "/home/postgres/pgdata/pgroot/data/postmaster.pid"]).output == pid_before
    assert node.exec_run(["test", "-e", "/tmp/pwned"]).exit_code != 0
    assert "Traceback" not in node.logs().decode(errors="replace")


def test_legitimate_paths_keep_working(project: Project) -> None:
    leader = wait_for("a healthy cluster", project.healthy, timeout=120)
    node = project.container(leader)
    listed = node.exec_run(["howdahctl", "list", "-f", "json"])
    assert listed.exit_code == 0 and len(json.loads(listed.output.decode())["members"]) == 3
    reload = node.exec_run(["howdahctl", "reload", "--force"])  # POSTs with the rendered config's credentials
    assert reload.exit_code == 0, reload.output.decode()
    assert sql(project.primary_port, "select 1") == [(1,)]  # HAProxy's /primary checks route to the leader
    code = ("import base64,urllib.request as u\n"
            "r=u.Request('http://%s:8008/reload',data=b'',method='POST',headers={'Authorization':"
            "'Basic '+base64.b64encode(b'%s:%s').decode()})\n"
            "print(u.urlopen(r,timeout=30).status)" % (leader, API_USER, API_PASSWORD))
    out = project.client.containers.run(IMAGE, entrypoint=["python3", "-c", code], remove=True,
                                        network=f"{project.name}_default", labels={"howdah-test": "attacker"})
    assert out.decode().strip() in ("200", "202")


def test_a_second_container_on_a_nodes_volume_does_not_start_postgresql(project: Project) -> None:
    leader = wait_for("a healthy cluster", project.healthy, timeout=120)
    replica = next(n for n in NODES if n != leader)
    volume = f"{project.name}_{replica}"
    intruder = project.client.containers.run(
        IMAGE, detach=True, network=f"{project.name}_default", labels={"howdah-test": "attacker"},
        environment={"SCOPE": "demo", "ETCD3_HOST": "etcd:2379", "ETCD3_USERNAME": "howdah",
                     "ETCD3_PASSWORD": "howdah-etcd-demo", "PGPASSWORD_SUPERUSER": "postgres",
                     "PGPASSWORD_STANDBY": "standby", "PGPASSWORD_ADMIN": "admin",
                     "PATRONI_RESTAPI_USERNAME": API_USER, "PATRONI_RESTAPI_PASSWORD": API_PASSWORD},
        volumes={volume: {"bind": "/home/postgres/pgdata", "mode": "rw"}}, hostname=f"{replica}-twin")
    try:
        status = intruder.wait(timeout=120)
        logs = intruder.logs().decode(errors="replace").strip().splitlines()
        assert status["StatusCode"] == 2, logs
        assert len(logs) == 1 and "in use by another container" in logs[0], logs
    finally:
        intruder.remove(force=True)
    time.sleep(1)
    assert wait_for("the replica still streaming", lambda: replica in project.streaming_replicas(leader), timeout=60)
