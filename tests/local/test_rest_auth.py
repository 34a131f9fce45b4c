"""REST API authentication on live agents (issue 14 item 1).

* with no ``restapi.authentication`` an agent refuses every unsafe request
  (403, one line naming the settings), so nobody who merely reaches the port
  can PATCH /config or POST /restart; its health checks stay open;
* a half-configured authentication stops the agent at start with one line;
* ``restapi.auth_reads`` puts /config, /cluster, /history and /metrics behind
  the credentials, howdahctl (which reads them from the config) keeps working.

Patroni 4.1.5 serves unsafe requests to anyone when no credentials are set:
this is a deliberate difference (documented in configs/README.md).
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
import yaml

from harness import LocalCluster
from harness.config import HOWDAH_VENV
from harness.web import request
from harness.waiting import wait_for

pytestmark = pytest.mark.local
TIMING = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
UNSAFE = [("POST", "/restart"), ("POST", "/reload"), ("POST", "/reinitialize"),
          ("PATCH", "/config"), ("PUT", "/config"), ("POST", "/switchover"),
          ("POST", "/failover"), ("DELETE", "/switchover"), ("DELETE", "/restart")]


def test_without_credentials_unsafe_requests_are_refused(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(1, scope="noauth", extra={"restapi": {"authentication": None}}, **TIMING)
    node = c.wait_leader(180)
    wait_for("running", lambda: (node.api("/patroni")[1] or {}).get("state") == "running")
    before = c.dcs_key("config")
    evil = {"postgresql": {"parameters": {"archive_command": "touch /tmp/pwned-by-rest"}}}
    for method, path in UNSAFE:
        code, body = request(node.api_url + path, method, evil if path == "/config" else {"force": True},
                             timeout=30, auth=("anyone", "anything"))
        assert code == 403, (method, path, code, body)
        assert "restapi.authentication is not configured" in str(body)
    assert c.dcs_key("config") == before, "the DCS config was not changed"
    pid = node.postmaster_pid()
    assert node.api("/primary")[0] == 200 and node.api("/health")[0] == 200
    assert node.api("/cluster")[0] == 200  # reads stay open without auth_reads
    time.sleep(3)  # a restart, had one been accepted, would have begun by now
    assert node.postmaster_pid() == pid


def test_half_configured_authentication_stops_the_agent(tmp_path: Path) -> None:
    base = {"scope": "x", "name": "n1", "etcd3": {"hosts": ["127.0.0.1:1"]},
            "restapi": {"listen": "127.0.0.1:1"},
            "postgresql": {"listen": "127.0.0.1:5432", "data_dir": str(tmp_path / "d"),
                           "authentication": {"superuser": {"username": "postgres"},
                                              "replication": {"username": "r"}}}}
    for auth, field in (({"username": "u"}, "restapi.authentication.password"),
                        ({"password": "p"}, "restapi.authentication.username")):
        cfg = tmp_path / "agent.yml"
        cfg.write_text(yaml.safe_dump({**base, "restapi": {**base["restapi"], "authentication": auth}}))
        for args in ([str(cfg)], ["--validate-config", str(cfg)]):
            res = subprocess.run([str(HOWDAH_VENV / "bin" / "howdah"), *args], capture_output=True,
                                 text=True, timeout=60)
            assert res.returncode == 2, res.stdout + res.stderr
            lines = [line for line in res.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and field in lines[0], res.stderr
    # the same through the environment: PATRONI_RESTAPI_PASSWORD alone
    cfg.write_text(yaml.safe_dump(base))
    res = subprocess.run([str(HOWDAH_VENV / "bin" / "howdah"), str(cfg)], capture_output=True, text=True,
                         timeout=60, env={"PATRONI_RESTAPI_PASSWORD": "p", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 2 and "restapi.authentication.username" in res.stderr, res.stderr


def test_auth_reads_protects_the_configuration_reads(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(1, scope="authreads", extra={"restapi": {"auth_reads": True}}, **TIMING)
    node = c.wait_leader(180)
    wait_for("running", lambda: (node.api("/patroni")[1] or {}).get("state") == "running")
    for path in ("/config", "/cluster", "/history", "/metrics"):
        assert node.api(path, auth=False)[0] == 401, path
        code, _ = request(node.api_url + path, auth=("harness-api", "wrong"))
        assert code == 401, path
        assert node.api(path)[0] == 200, path
    for path in ("/patroni", "/primary", "/health", "/liveness", "/readiness"):
        assert node.api(path, auth=False)[0] == 200, path
    ctl = str(HOWDAH_VENV / "bin" / "howdahctl")
    res = subprocess.run([ctl, "-c", str(node.config_path), "show-config"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "ttl" in res.stdout, res.stdout + res.stderr
    res = subprocess.run([ctl, "-c", str(node.config_path), "list", "-f", "json"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and json.loads(res.stdout)["members"], res.stdout + res.stderr
    res = subprocess.run([ctl, "-c", str(node.config_path), "reload", "--force"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and f"{node.name}: " in res.stdout, res.stdout + res.stderr
