"""The control handlers over real sockets with a fake Control: failures never become 500s."""
from __future__ import annotations

import base64
import http.client
import threading
from typing import Any, Iterator

import pytest

from howdah.api.routes import control_routes
from howdah.api.server import RestApiServer
from howdah.core.status import NodeStatus
from howdah.core.models import ClusterView, Leader, Member
from howdah.dcs.base import DcsError

VIEW = ClusterView(initialize="1", leader=Leader("n1", 3), config={"ttl": 30}, config_index=4,
                   members=(Member("n1", "primary", "running", "postgres://127.0.0.1:5432/postgres",
                                   "http://127.0.0.1:1/patroni", 0, 1),))


class BrokenDcs:
    prefix = "/service/demo"
    timeout = 1.0

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read_nodes(self) -> Any:
        raise self.error

    def write_failover(self, value: Any, index: Any = None) -> bool:
        raise self.error


class FakeControl:
    name = "n1"
    scope = "demo"

    def __init__(self, error: Exception) -> None:
        self.dcs = BrokenDcs(error)
        self.woken = threading.Event()

    def view(self) -> ClusterView:
        return VIEW

    def status(self) -> NodeStatus:
        return NodeStatus(name="n1", scope="demo", role="primary")

    def pending(self) -> None:
        return None

    def wake(self) -> None:
        self.woken.set()


AUTH = {"authentication": {"username": "u", "password": "p"}}
GOOD = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}


def serve(error: Exception, restapi: dict[str, Any] | None = None) -> RestApiServer:
    routes = control_routes(FakeControl(error), AUTH if restapi is None else restapi)  # type: ignore[arg-type]
    api = RestApiServer(lambda: NodeStatus(), extra_routes=routes, use_uvloop=False)
    api.start("127.0.0.1", 0)
    return api


def call(api: RestApiServer, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), resp
    finally:
        conn.close()


@pytest.fixture
def dcs_down() -> Iterator[RestApiServer]:
    api = serve(DcsError("etcd unreachable"))
    yield api
    api.stop()


@pytest.fixture
def buggy() -> Iterator[RestApiServer]:
    api = serve(ZeroDivisionError("boom"))
    yield api
    api.stop()


def test_views_fall_back_to_the_agents_view_when_the_dcs_is_down(dcs_down: RestApiServer) -> None:
    code, text, _ = call(dcs_down, "GET", "/cluster")
    assert code == 200 and '"role": "leader"' in text
    assert call(dcs_down, "GET", "/history")[:2] == (200, "[]")


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/config", None), ("PATCH", "/config", b'{"ttl": 30}'), ("PUT", "/config", b'{"ttl": 30}'),
    ("POST", "/switchover", b'{"leader": "n1"}'), ("POST", "/failover", b'{"candidate": "n1"}'),
    ("DELETE", "/switchover", None),
])
def test_an_unreachable_dcs_is_503(dcs_down: RestApiServer, method: str, path: str,
                                   body: bytes | None) -> None:
    code, text, _ = call(dcs_down, method, path, body, GOOD)
    assert code == 503 and "DCS unavailable" in text


def test_unexpected_errors_are_503_without_traceback(buggy: RestApiServer) -> None:
    code, text, _ = call(buggy, "GET", "/config")
    assert code == 503 and text == "internal error: ZeroDivisionError"


def test_authentication_and_allowlist() -> None:
    api = serve(DcsError("down"), {"authentication": {"username": "u", "password": "p"},
                                   "allowlist": ["127.0.0.0/8"]})
    try:
        code, text, resp = call(api, "POST", "/reload")
        assert (code, text) == (401, "no auth header received")
        assert resp.getheader("WWW-Authenticate") == 'Basic realm="Howdah"'
        good = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
        assert call(api, "POST", "/switchover", b"[]", good)[:2] == \
            (400, "request body must be a JSON object, not list")
        assert call(api, "GET", "/cluster")[0] == 200  # reads need no credentials
    finally:
        api.stop()
    api = serve(DcsError("down"), {"allowlist": ["10.0.0.0/8"], **AUTH})
    try:
        assert call(api, "POST", "/reload", None, GOOD)[:2] == (403, "Access is denied")
    finally:
        api.stop()


def test_without_credentials_configured_unsafe_requests_are_refused() -> None:
    api = serve(DcsError("down"), {})
    try:
        for method, path in (("POST", "/reload"), ("POST", "/restart"), ("POST", "/reinitialize"),
                             ("PATCH", "/config"), ("PUT", "/config"), ("DELETE", "/switchover"),
                             ("POST", "/switchover"), ("POST", "/failover")):
            code, text, _ = call(api, method, path, b'{"force": true}', GOOD)
            assert code == 403 and "restapi.authentication is not configured" in text, (method, path)
        assert call(api, "GET", "/cluster")[0] == 200
    finally:
        api.stop()


def test_auth_reads_puts_the_configuration_reads_behind_the_credentials() -> None:
    api = serve(DcsError("down"), {"auth_reads": True, **AUTH})
    try:
        for path in ("/config", "/cluster", "/history", "/metrics"):
            assert call(api, "GET", path)[0] == 401, path
            assert call(api, "GET", path, None, GOOD)[0] != 401, path
        assert call(api, "GET", "/restart")[0] == 404  # the scheduled restart is not configuration
    finally:
        api.stop()


@pytest.mark.parametrize("body, reason", [
    (b'{"leader": NaN}', "NaN"), (b'{"leader": Infinity}', "Infinity"), (b'{"leader": -Infinity}', "Infinity"),
    (b'{"leader": 1e999}', "out of range"), (b'{"leader": ' + b"9" * 40 + b"}", "digits"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, "deeper"), (b"[" * 100000 + b"]" * 100000, "deeper"),
    (b'{"leader": "n1"', "not valid JSON"), (b"\xff\xfe{}", "not valid JSON"),
])
def test_hostile_json_bodies_are_400_with_a_reason(body: bytes, reason: str) -> None:
    api = serve(DcsError("down"))
    try:
        code, text, _ = call(api, "POST", "/switchover", body, GOOD)
        assert code == 400 and reason in text and "Traceback" not in text, text
    finally:
        api.stop()


@pytest.mark.parametrize("length", ["\u00b2", "+5", "5, 5", "-1", "0x10", "1" * 20, " "])
def test_content_length_is_parsed_strictly(length: str) -> None:
    import socket
    api = serve(DcsError("down"))
    try:
        with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
            sock.sendall(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: " + length.encode("latin-1")
                         + b"\r\n\r\n{}")
            head = sock.recv(4096).decode("latin-1")
        assert head.startswith("HTTP/1.1 400 "), head
    finally:
        api.stop()


def test_idle_connections_never_lock_out_a_new_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    from howdah.api import front
    monkeypatch.setattr(front, "MAX_CONNECTIONS", 8)
    api = serve(DcsError("down"))
    idle = []
    try:
        for _ in range(20):  # idle keep-alive clients, far more than the cap
            sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 ")
            idle.append(sock)
        for _ in range(3):
            assert call(api, "GET", "/cluster")[0] == 200
            assert call(api, "POST", "/reload", None, {**GOOD, "Content-Length": "0"})[0] in (200, 202, 503)
    finally:
        for sock in idle:
            sock.close()
        api.stop()
