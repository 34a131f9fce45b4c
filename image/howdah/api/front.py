"""The REST API's HTTP/1.x front: a fast path for probes, Tornado for the rest.

Load balancers poll the health paths many times a second per node.  Measured
on a 2-core machine under ``wrk -t2 -c16`` with a constant reply, Tornado's
own HTTP server did about 3,300 req/s through a RequestHandler (p99 7.7 ms)
and 6,000 through a bare message delegate (p99 3.9 ms); a request loop over
Tornado's IOStream about 18,000 with a long tail when the CPUs are shared; an
``asyncio.Protocol`` about 40,000.  So this module is a Protocol that parses each
request head itself and answers GET/HEAD/OPTIONS of a health path or
/patroni (without a body) straight from the snapshot's cached bytes, inside
``data_received``.  Every other request becomes a task that hands it to the
:class:`tornado.web.Application` (:mod:`howdah.api.adapter`); the connection
reads nothing more until that response is written.

Tornado and the application are loaded on the first request the fast path
does not answer: an agent that only load balancers and peers talk to never
imports them (about 5 MB of RSS less per agent).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from email.utils import formatdate
from http import HTTPStatus
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

from howdah.api.responder import Reply, StatusResponder, error_body
from howdah.api.wire import MAX_BODY_BYTES, BadRequest

if TYPE_CHECKING:
    from tornado.web import Application

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
# Open client connections per agent: far above patronictl, HAProxy's checks (one per check)
# and the tests; a flood of idle ones only ever displaces other idle ones.
MAX_CONNECTIONS = 1000
_FAST_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_VERSIONS = frozenset({"HTTP/1.1", "HTTP/1.0"})
_JSON = b"Content-Type: application/json\r\n"


def status_line(code: int) -> bytes:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {code} {phrase}\r\n".encode("ascii")


_STATUS_LINES = {code: status_line(code) for code in (200, 400, 404, 503)}
_date_cache: list[Any] = [0, b""]


def date_header() -> bytes:
    """``Date: ...`` for this second, formatted once per second."""
    sec = int(time.time())
    if _date_cache[0] != sec:
        _date_cache[0] = sec
        _date_cache[1] = b"Date: " + formatdate(sec, usegmt=True).encode("ascii") + b"\r\n"
    head: bytes = _date_cache[1]
    return head


def render(reply: Reply, method: str, keep_alive: bool, http10: bool) -> bytes:
    """One complete response; HEAD and OPTIONS carry no body."""
    body = reply.body if method == "GET" else b""
    length = len(reply.body) if method == "HEAD" else len(body)
    parts = [
        _STATUS_LINES.get(reply.code) or status_line(reply.code),
        _JSON,
        b"Content-Length: %d\r\n" % length,
        date_header(),
    ]
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    elif http10:
        parts.append(b"Connection: keep-alive\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)


def _connection_tokens(lower_headers: bytes) -> bytes:
    """The (lowercased) value of the Connection header, or b''."""
    i = lower_headers.find(b"\nconnection:")
    if i < 0:
        return b""
    end = lower_headers.find(b"\n", i + 12)
    return lower_headers[i + 12 : end if end >= 0 else None]


class FrontServer:
    """Serves the REST API on listening sockets (on the running loop): health
    paths from ``responder``, the rest through the application ``app_factory``
    builds when it is first needed."""

    def __init__(self, responder: StatusResponder, app_factory: Callable[[], "Application"],
                 ssl_ctx: Optional[ssl.SSLContext] = None, idle_timeout: float = 60.0) -> None:
        self.responder = responder
        self._app_factory = app_factory
        self._app: Optional["Application"] = None
        self.ssl_ctx = ssl_ctx
        self.idle_timeout = idle_timeout
        self.conns: dict[HttpProtocol, None] = {}
        # At the cap, a new connection closes the longest-idle keep-alive one (idle clients
        # never lock out a health check); only when every one is busy is it refused.
        self.max_connections = MAX_CONNECTIONS
        self._servers: list[asyncio.AbstractServer] = []
        self._sweeper: Optional[asyncio.TimerHandle] = None

    @property
    def app(self) -> "Application":
        if self._app is None:
            self._app = self._app_factory()
        return self._app

    async def start(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            server = await loop.create_server(lambda: HttpProtocol(self), sock=sock, ssl=self.ssl_ctx)
            self._servers.append(server)
        self._sweeper = loop.call_later(self._sweep_interval, self._sweep)

    @property
    def _sweep_interval(self) -> float:
        return max(self.idle_timeout / 4, 0.05)

    def _sweep(self) -> None:
        """Close connections idle (between requests) longer than idle_timeout."""
        limit = time.monotonic() - self.idle_timeout
        for conn in list(self.conns):
            if not conn.busy and conn.idle_since < limit:
                conn.close()
        self._sweeper = asyncio.get_running_loop().call_later(self._sweep_interval, self._sweep)

    def make_room(self) -> bool:
        """Close the longest-idle connection between requests; False when none is idle."""
        idle = [conn for conn in self.conns if not conn.busy and not conn.closing]
        if not idle:
            return False
        oldest = min(idle, key=lambda conn: conn.idle_since)
        self.conns.pop(oldest, None)
        oldest.close()
        return True

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        for conn in list(self.conns):
            conn.close()
        await asyncio.sleep(0)


class HttpProtocol(asyncio.Protocol):
    """One client connection: HTTP/1.0 and 1.1, keep-alive, pipelining."""

    def __init__(self, server: FrontServer) -> None:
        self.server = server
        self.transport: Optional[asyncio.Transport] = None
        self.buf = bytearray()
        self.busy = False  # a request is being served by the application
        self.closing = False
        self.idle_since = time.monotonic()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._need = 0
        self._task: Optional[asyncio.Task[None]] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        if len(self.server.conns) >= self.server.max_connections and not self.server.make_room():
            self.closing = True
            self.transport.abort()  # every slot serves a request: refuse, never queue without bound
            return
        self.server.conns[self] = None

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.server.conns.pop(self, None)
        self.transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionResetError("client went away"))

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its requests.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.busy:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self._waiter is not None:
            if len(self.buf) >= self._need and not self._waiter.done():
                self._waiter.set_result(None)
        elif not self.busy:
            self._process()
        if len(self.buf) > MAX_HEAD_BYTES + MAX_BODY_BYTES and self.transport is not None:
            self.transport.pause_reading()  # a client racing ahead of its answers

    def _process(self) -> None:
        """Answer every complete request head in the buffer, in order."""
        buf = self.buf
        while not (self.busy or self.closing or self.transport is None):
            if buf and buf[0] in (10, 13):
                buf[:] = buf.lstrip(b"\r\n")  # RFC 9112 2.2: tolerate empty lines
            end = buf.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
            if end < 0:
                if len(buf) >= MAX_HEAD_BYTES:
                    self._reject(BadRequest(431, "request head too large"))
                return
            head = bytes(buf[: end + 4])
            del buf[: end + 4]
            self.idle_since = time.monotonic()
            try:
                self._handle(head)
            except BadRequest as e:
                self._reject(e)
            except Exception:  # noqa: BLE001 - one bad request must not hurt the API
                log.exception("REST API request from %s failed", self._peer())
                self._reject(BadRequest(500, "internal error"))

    def _handle(self, head: bytes) -> None:
        assert self.transport is not None
        eol = head.find(b"\r\n")
        parts = head[:eol].decode("latin-1").split(" ")
        if len(parts) != 3 or parts[2] not in _VERSIONS or not parts[1]:
            raise BadRequest(400, "malformed request line")
        method, target, version = parts
        lower = head[eol:].lower()
        tokens = _connection_tokens(lower)
        http10 = version == "HTTP/1.0"
        keep_alive = (b"keep-alive" in tokens) if http10 else (b"close" not in tokens)
        if method in _FAST_METHODS and b"\ncontent-length:" not in lower and b"\ntransfer-encoding:" not in lower:
            path, _, query = target.partition("?")
            responder = self.server.responder
            if responder.handles(path):
                self.transport.write(render(responder.reply(path, query), method, keep_alive, http10))
                if not keep_alive:
                    self.close()
                return
        from howdah.api import adapter  # loads Tornado on the first such request
        headers = adapter.parse_headers(head[eol:])
        length = adapter.body_length(headers)
        self.busy = True
        start_line = adapter.RequestStartLine(method, target, version)
        self._task = asyncio.ensure_future(
            self._serve_app(adapter, start_line, headers, length, keep_alive))

    async def _serve_app(self, adapter: ModuleType, start_line: Any, headers: Any, length: int,
                         keep_alive: bool) -> None:
        try:
            body = await self._read_body(length, adapter.wants_continue(headers))
            ctx = adapter.RequestContext(self._peer(), self.server.ssl_ctx is not None,
                                         self._client_cert())
            conn = adapter.AppConnection(self._send, ctx, start_line.method, keep_alive)
            keep_alive = await adapter.dispatch_to_app(self.server.app, self.server, conn,
                                                       start_line, headers, body)
        except BadRequest as e:
            self._reject(e)
            return
        except (ConnectionError, asyncio.TimeoutError):
            self.close()  # the client went away, or stopped sending its body
            return
        except Exception:  # noqa: BLE001
            log.exception("REST API %s %s failed", start_line.method, start_line.path)
            self._reject(BadRequest(500, "internal error"))
            return
        self._task = None
        self.busy = False
        self.idle_since = time.monotonic()
        if not keep_alive:
            self.close()
        elif self.transport is not None:
            self.transport.resume_reading()
            self._process()

    async def _read_body(self, length: int, expect_continue: bool) -> bytes:
        if length and expect_continue and len(self.buf) < length:
            self._send(b"HTTP/1.1 100 (Continue)\r\n\r\n")
        if len(self.buf) < length:
            self._need = length
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, self.server.idle_timeout)
            finally:
                self._waiter = None
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return body

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def _reject(self, e: BadRequest) -> None:
        """Answer an error and close: the stream can no longer be trusted."""
        self._send(render(Reply(e.code, error_body(str(e))), "GET", False, False))
        self.close()
        self.buf.clear()

    def _client_cert(self) -> bool:
        """A client certificate was presented and verified in the TLS handshake."""
        if self.transport is None or self.server.ssl_ctx is None:
            return False
        return bool(self.transport.get_extra_info("peercert"))

    def _peer(self) -> Any:
        return self.transport.get_extra_info("peername") if self.transport is not None else None
