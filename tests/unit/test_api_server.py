"""The REST API over real sockets: codes, bodies, filters, and no 500s."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import importlib.util
import json
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
from tornado.httpserver import HTTPServer

from howdah.api.app import JsonHandler, make_app
from howdah.api.health import CHECKS
from howdah.api.server import RestApiServer
from howdah.core.status import NodeStatus

MB = 1 << 20


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


CLOCK_START = 1000.0
PRIMARY = NodeStatus(
    name="n1", scope="demo", state="running", role="primary", pg_running=True, timeline=1,
    xlog_location=100 * MB, lease_deadline=CLOCK_START + 20, last_loop=CLOCK_START, dcs_ok=True,
)
REPLICA = NodeStatus(
    name="n2", scope="demo", state="running", role="replica", pg_running=True, timeline=1,
    received_location=99 * MB, replayed_location=98 * MB, replication_state="streaming",
    leader_optime=100 * MB, last_loop=CLOCK_START, dcs_ok=True, tags={"zone": "b"},
)


class Node:
    """A RestApiServer on a free port serving whatever ``status`` holds."""

    def __init__(self, status: NodeStatus, **kwargs: Any) -> None:
        self.status = status
        self.clock = FakeClock(CLOCK_START)
        self.api = RestApiServer(lambda: self.status, self.clock, **kwargs)
        self.api.start("127.0.0.1", 0)

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[dict[str, str]] = None) -> tuple[int, bytes, http.client.HTTPResponse]:
        conn = http.client.HTTPConnection("127.0.0.1", self.api.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), resp
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.api.port), timeout=5) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)


HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


@pytest.fixture(params=[False, pytest.param(True, marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="no uvloop"))],
                ids=["asyncio", "uvloop"])
def node(request: pytest.FixtureRequest) -> Iterator[Node]:
    n = Node(PRIMARY, use_uvloop=request.param)
    yield n
    n.api.stop()


def test_get_primary_answers_code_and_patroni_json(node: Node) -> None:
    code, body, resp = node.request("GET", "/primary")
    assert code == 200
    assert resp.getheader("Content-Type") == "application/json"
    assert json.loads(body) == PRIMARY.to_patroni_json(CLOCK_START)
    code, body, _ = node.request("GET", "/replica")
    assert code == 503 and json.loads(body)["role"] == "primary"


def test_get_patroni_is_always_200(node: Node) -> None:
    node.status = REPLICA
    code, body, _ = node.request("GET", "/patroni?lag=nonsense")
    assert code == 200 and json.loads(body)["xlog"]["replayed_location"] == 98 * MB


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_head_and_options_send_the_code_only(node: Node, method: str) -> None:
    assert node.request(method, "/primary")[:2] == (200, b"")
    assert node.request(method, "/")[:2] == (200, b"")
    assert node.request(method, "/replica")[:2] == (503, b"")
    assert node.request(method, "/replica?lag=x")[:2] == (400, b"")
    assert node.request(method, "/missing")[0] == 404


def test_every_health_path_is_served(node: Node) -> None:
    for path in CHECKS:
        for method in ("GET", "HEAD", "OPTIONS"):
            assert node.request(method, path)[0] in (200, 503), (method, path)


def test_lease_expiry_flips_primary_without_a_new_snapshot(node: Node) -> None:
    assert node.request("GET", "/primary")[0] == 200
    node.clock.t = CLOCK_START + 20
    code, body, _ = node.request("GET", "/primary")
    assert code == 503
    assert json.loads(body)["state"] == "unknown"
    assert node.request("OPTIONS", "/leader")[0] == 503


def test_new_snapshot_is_served_at_once(node: Node) -> None:
    node.status = REPLICA
    assert node.request("GET", "/primary")[0] == 503
    assert node.request("GET", "/replica")[0] == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 200),
        ("?lag=2MB", 200),
        ("?lag=1MB", 503),  # leader 100 MB, replayed 98 MB
        ("?lag=2097152", 200),
        ("?lag=2048kB", 200),
        ("?lag=1GB&tag_zone=b", 200),
        ("?tag_zone=b", 200),
        ("?tag_zone=a", 503),
        ("?tag_rack=1", 503),
        ("?replication_state=streaming", 200),
        ("?replication_state=in%20archive%20recovery", 503),
        ("?lag=ten", 400),
        ("?lag=", 400),
    ],
)
def test_replica_filters(node: Node, query: str, expected: int) -> None:
    node.status = REPLICA
    code, body, _ = node.request("GET", "/replica" + query)
    assert code == expected
    if code == 400:
        assert "invalid lag" in json.loads(body)["error"]


def test_unknown_path_is_404_json(node: Node) -> None:
    code, body, _ = node.request("GET", "/nope")
    assert code == 404 and json.loads(body) == {"error": "not found: /nope"}
    assert node.request("POST", "/nope", b"{}")[0] == 404


def test_wrong_method_is_405_json(node: Node) -> None:
    code, body, _ = node.request("POST", "/primary", b"{}", {"Content-Type": "application/json"})
    assert code == 405 and "error" in json.loads(body)


MALFORMED_QUERIES = [
    "lag=%ff", "lag=1e400", "lag=99999999999999999999999999", "lag=-1", "lag=1.5.5MB",
    "tag_%ff=%fe", "tag_=x", "&&&", "=", "%", "%%%", "lag", "lag=10MB&lag=x", "mode=",
    "mode=write&lag=%00", "x=" + "a" * 20000, "tag_zone=%E2%9C%93", ";;", "lag=1;2",
]


@pytest.mark.parametrize("query", MALFORMED_QUERIES)
def test_malformed_query_never_500(node: Node, query: str) -> None:
    for path in ("/replica", "/primary", "/readiness", "/read-only", "/patroni"):
        for method in ("GET", "HEAD", "OPTIONS"):
            code, body, _ = node.request(method, f"{path}?{query}")
            assert code in (200, 400, 503), (method, path, query, code)
            if method == "GET":
                json.loads(body)
                assert b"Traceback" not in body


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n\r\n",
        b"GET /primary\r\n\r\n",
        b"GET /primary HTTP/2.0\r\n\r\n",
        b"GET  HTTP/1.1\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nbad header line\r\n\r\n",
        b"GET /nope HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"\xff\xfe /primary HTTP/1.1\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /primary HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
    ],
)
def test_malformed_request_never_500(node: Node, data: bytes) -> None:
    reply = node.raw(data)
    assert b" 500 " not in reply.split(b"\r\n", 1)[0]
    assert b"Traceback" not in reply
    if reply:
        assert reply.split(b" ", 2)[1] in (b"400", b"404", b"405", b"411", b"413", b"431")


def test_keep_alive_and_http10_close(node: Node) -> None:
    twice = b"GET /primary HTTP/1.1\r\nHost: x\r\n\r\n" * 2 + b"OPTIONS /replica HTTP/1.1\r\nConnection: close\r\n\r\n"
    reply = node.raw(twice)
    assert reply.count(b"HTTP/1.1 200 OK") == 2 and reply.count(b"HTTP/1.1 503") == 1
    reply = node.raw(b"OPTIONS /primary HTTP/1.0\r\n\r\n")  # HAProxy's httpchk
    assert reply.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in reply


def test_slow_path_keeps_the_connection(node: Node) -> None:
    reply = node.raw(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /primary HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert b"404 Not Found" in reply and b"200 OK" in reply


def test_expect_continue_body(node: Node) -> None:
    code, _, _ = node.request("POST", "/nope", b"x" * 2000, {"Expect": "100-continue"})
    assert code == 404


def test_failing_get_status_is_503_not_500() -> None:
    def broken() -> NodeStatus:
        raise RuntimeError("agent bug")

    api = RestApiServer(broken)
    api.start("127.0.0.1", 0)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
        conn.request("GET", "/primary")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 503 and "error" in json.loads(body)
        assert b"Traceback" not in body and b"agent bug" not in body
    finally:
        api.stop()


class Boom(JsonHandler):
    def get(self) -> None:
        raise ValueError("secret detail")


class Echo(JsonHandler):
    def post(self) -> None:
        self.write_json(201, {"got": json.loads(self.request.body), "ip": self.request.remote_ip})


def test_extra_routes_and_handler_errors_are_json() -> None:
    n = Node(PRIMARY, extra_routes=[(r"/boom", Boom, {}), (r"/echo", Echo, {}), (r"/bad", Boom, {"x": 1})])
    try:
        code, body, _ = n.request("GET", "/boom")
        assert code == 500 and json.loads(body) == {"error": "Internal Server Error"}
        assert b"secret detail" not in body
        code, body, _ = n.request("POST", "/echo", b'{"a": 1}')
        assert code == 201 and json.loads(body) == {"got": {"a": 1}, "ip": "127.0.0.1"}
        code, body, _ = n.request("GET", "/bad")  # the handler cannot even be built
        assert code == 500 and json.loads(body) == {"error": "internal error"}
    finally:
        n.api.stop()


def _tornado_server(app: Any) -> tuple[int, Callable[[], None]]:
    """Serve ``app`` with Tornado's own HTTPServer on a thread."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def main() -> None:
            server = HTTPServer(app)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(16)
            sock.setblocking(False)
            server.add_sockets([sock])
            box["port"], box["stop"] = sock.getsockname()[1], asyncio.Event()
            box["loop"] = loop
            ready.set()
            await box["stop"].wait()
            server.stop()

        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)

    def stop() -> None:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(5)

    return box["port"], stop


def test_plain_tornado_serving_agrees_with_the_fast_front(node: Node) -> None:
    node.status = REPLICA
    port, stop = _tornado_server(make_app(lambda: node.status, node.clock))
    try:
        for path in [*CHECKS, "/patroni", "/nope", "/replica?lag=1MB", "/replica?lag=bad", "/replica?tag_zone=b"]:
            for method in ("GET", "HEAD", "OPTIONS"):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request(method, path)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                fast_code, fast_body, _ = node.request(method, path)
                assert (resp.status, body) == (fast_code, fast_body), (method, path)
    finally:
        stop()


def test_uvloop_by_default_when_importable() -> None:
    n = Node(PRIMARY)
    try:
        loop = n.api._loop
        assert loop is not None
        assert ("uvloop" in type(loop).__module__) == HAVE_UVLOOP
    finally:
        n.api.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    n = Node(PRIMARY, certfile=str(cert), keyfile=str(key))
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", n.api.port, timeout=5, context=ctx)
        conn.request("GET", "/primary")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["role"] == "primary"
        conn.close()
        assert n.api.scheme == "https"
    finally:
        n.api.stop()


def test_start_errors_raise_in_the_caller() -> None:
    first = Node(PRIMARY)
    try:
        second = RestApiServer(lambda: PRIMARY)
        with pytest.raises(OSError):
            second.start("127.0.0.1", first.api.port)
        with pytest.raises(ValueError, match="restapi.certfile: no such file /nonexistent.pem"):
            RestApiServer(lambda: PRIMARY, certfile="/nonexistent.pem").start("127.0.0.1", 0)
    finally:
        first.api.stop()


def test_stop_frees_the_port_and_is_idempotent() -> None:
    n = Node(PRIMARY)
    port = n.api.port
    assert n.api.is_alive()
    n.api.stop()
    assert not n.api.is_alive()
    n.api.stop()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_replaced_snapshot_fields_do_not_leak(node: Node) -> None:
    node.status = dataclasses.replace(PRIMARY, tags={"noloadbalance": True})
    code, body, _ = node.request("GET", "/read-only")
    assert code == 200 and json.loads(body)["tags"] == {"noloadbalance": True}


def test_idle_and_slow_clients_are_dropped() -> None:
    n = Node(PRIMARY, idle_timeout=0.3)
    try:
        # keep-alive connection left idle, then a body that never arrives
        assert n.raw(b"GET /primary HTTP/1.1\r\nHost: x\r\n\r\n").count(b"200 OK") == 1
        reply = n.raw(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert reply == b""
        assert n.request("GET", "/primary")[0] == 200
    finally:
        n.api.stop()
