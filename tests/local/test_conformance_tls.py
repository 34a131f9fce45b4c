"""REST API TLS side by side: Patroni 4.1.5 and Howdah from the same YAML.

One self-signed CA; every member serves https with `verify_client: required` and
calls its peers with the `ctl` client certificate; patronictl uses the same `ctl`
section. Each agent kind must show the same observable outcome:

* without a client certificate nothing gets an HTTP answer (the TLS handshake fails);
* with one, the same status codes for the same requests;
* real patronictl (with ctl certificates) reloads every member;
* after kill -9 of the leader the survivor with the highest failover_priority wins:
  at equal WAL positions only a successful peer check (GET /patroni over mutual TLS)
  lets a member see that a better one exists.

Known difference: Patroni's server sends a TLS alert ("certificate required") before it
closes; Howdah's (asyncio) closes the connection without one. Both give no HTTP answer.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness import LocalCluster, TestCA, wait_until
from harness.config import PATRONI_VENV
from harness.tls import have_openssl

pytestmark = [pytest.mark.local, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_openssl(), reason="needs the openssl CLI")]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
# curl: 35 handshake failed, 52 empty reply, 55 send failed, 56 receive failed
NO_HTTP_ANSWER = {35, 52, 55, 56}


@pytest.fixture(scope="module")
def ca() -> Iterator[TestCA]:
    with TestCA() as authority:
        yield authority


def tls_extra(ca: TestCA, verify_client: str) -> dict[str, Any]:
    server = ca.issue("member")
    client = ca.issue("ctl", client=True, server=False)
    # the client certificate is the authentication here: no Basic credentials (the harness's
    # default ones removed), as both agents then ask for the certificate alone
    return {"restapi": {"certfile": server.cert, "keyfile": server.key, "cafile": ca.cert,
                        "verify_client": verify_client, "authentication": None},
            "ctl": {"certfile": client.cert, "keyfile": client.key, "cacert": ca.cert}}


def curl(url: str, method: str = "GET", *args: str) -> tuple[int, str]:
    """(curl's exit code, the HTTP status as curl prints it: 000 for none)."""
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
           "-X", method, *args, url]
    if method != "GET":
        cmd[1:1] = ["-H", "Content-Type: application/json", "-d", "{}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return res.returncode, res.stdout.strip()


def _kind(request: pytest.FixtureRequest, kind: str) -> None:
    if kind == "patroni":
        request.getfixturevalue("patroni_venv")


def _received(node: Any) -> int | None:
    code, body = node.api("/patroni")
    if code != 200 or not isinstance(body, dict):
        return None
    xlog = body.get("xlog") or {}
    value = xlog.get("received_location", xlog.get("location"))
    return int(value) if value is not None else None


@pytest.mark.parametrize("kind", [pytest.param("patroni", marks=pytest.mark.patroni), "howdah"])
def test_verify_client_required(kind: str, ca: TestCA, request: pytest.FixtureRequest,
                                local_cluster: Callable[..., LocalCluster]) -> None:
    _kind(request, kind)
    extra = tls_extra(ca, "required")
    ctl = extra["ctl"]
    with_cert = ["--cacert", ca.cert, "--cert", ctl["certfile"], "--key", ctl["keyfile"]]
    cluster = local_cluster(3, kind=kind, **FAST, extra=extra, tags={
        "n1": {"failover_priority": 1}, "n2": {"failover_priority": 2},
        "n3": {"failover_priority": 3}})
    leader = cluster.wait_leader(180)
    cluster.wait_streaming(2, 300)
    replica = next(n for n in cluster.nodes if n is not leader)
    base = f"https://127.0.0.1:{leader.api_port}"

    # No client certificate: no HTTP answer at all, for safe and unsafe requests.
    for method, path in (("GET", "/primary"), ("GET", "/patroni"), ("POST", "/reload")):
        rc, status = curl(base + path, method, "--cacert", ca.cert)
        assert status == "000" and rc in NO_HTTP_ANSWER, (kind, method, path, rc, status)

    # With the ctl certificate: the same codes on both agents.
    replica_base = f"https://127.0.0.1:{replica.api_port}"
    wait_until(lambda: curl(replica_base + "/replica", "GET", *with_cert)[1] == "200", 120,
               what=f"{replica.name} answers /replica 200 over mutual TLS")
    seen = {
        "leader GET /primary": curl(base + "/primary", "GET", *with_cert)[1],
        "leader GET /replica": curl(base + "/replica", "GET", *with_cert)[1],
        "leader GET /patroni": curl(base + "/patroni", "GET", *with_cert)[1],
        "leader GET /cluster": curl(base + "/cluster", "GET", *with_cert)[1],
        "replica GET /primary": curl(replica_base + "/primary", "GET", *with_cert)[1],
        "replica GET /replica": curl(replica_base + "/replica", "GET", *with_cert)[1],
        "leader PATCH /config {}": curl(base + "/config", "PATCH", *with_cert)[1],
    }
    assert seen == {
        "leader GET /primary": "200", "leader GET /replica": "503",
        "leader GET /patroni": "200", "leader GET /cluster": "200",
        "replica GET /primary": "503", "replica GET /replica": "200",
        "leader PATCH /config {}": "400",
    }, kind

    # Real patronictl with the ctl certificates: a REST call to every member.
    res = subprocess.run([str(PATRONI_VENV / "bin" / "patronictl"), "-c", str(leader.config_path),
                          "reload", cluster.scope, "--force"], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for node in cluster.nodes:
        assert f"Reload request received for member {node.name}" in out, out

    # Failover: at equal WAL, the survivor with the highest failover_priority wins,
    # which it can only know from a successful peer check over mutual TLS.
    survivors = [n for n in cluster.nodes if n is not leader]
    expected = max(survivors, key=lambda n: int(n.config["tags"]["failover_priority"]))

    def caught_up() -> bool:
        top = _received(leader)
        return top is not None and all(_received(n) == top for n in survivors)
    wait_until(caught_up, 120, what="both replicas received all of the leader's WAL")
    leader.kill9()
    new = cluster.wait_leader(180, exclude=[leader.name])
    assert new.name == expected.name, (kind, new.name, cluster.dump_logs(60))


@pytest.mark.parametrize("kind", [pytest.param("patroni", marks=pytest.mark.patroni), "howdah"])
def test_verify_client_optional_guards_unsafe_requests_only(
        kind: str, ca: TestCA, request: pytest.FixtureRequest,
        local_cluster: Callable[..., LocalCluster]) -> None:
    _kind(request, kind)
    extra = tls_extra(ca, "optional")
    ctl = extra["ctl"]
    cluster = local_cluster(1, kind=kind, **FAST, extra=extra)
    leader = cluster.wait_leader(180)
    base = f"https://127.0.0.1:{leader.api_port}"
    plain = ["--cacert", ca.cert]
    with_cert = plain + ["--cert", ctl["certfile"], "--key", ctl["keyfile"]]
    seen = {
        "GET /primary": curl(base + "/primary", "GET", *plain)[1],
        "GET /cluster": curl(base + "/cluster", "GET", *plain)[1],
        "POST /reload": curl(base + "/reload", "POST", *plain)[1],
        "PATCH /config": curl(base + "/config", "PATCH", *plain)[1],
        "POST /reload with cert": curl(base + "/reload", "POST", *with_cert)[1],
    }
    assert seen == {"GET /primary": "200", "GET /cluster": "200", "POST /reload": "403",
                    "PATCH /config": "403", "POST /reload with cert": "202"}, kind
    out = subprocess.run(["curl", "-sS", "--cacert", ca.cert, "-X", "POST", base + "/reload"],
                         capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "client certificate required", (kind, out)
