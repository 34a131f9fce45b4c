"""Hands a request read by the fast front to the Tornado application.

:func:`dispatch_to_app` drives the application's message delegate with a
request head parsed into Tornado's ``HTTPHeaders`` and its body, and an
:class:`AppConnection` - the ``HTTPConnection`` a ``RequestHandler`` writes
its response to.  The response is buffered and written in one piece when
the handler finishes, with a Content-Length.

Not supported (answered with an error and a closed connection): chunked
request bodies (411), bodies over :data:`MAX_BODY_BYTES` (413).  Patroni's
own server does not take chunked bodies either.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Optional, Union

from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPInputError,
    RequestStartLine,
    ResponseStartLine,
)
from tornado.web import Application

from howdah.api.wire import MAX_BODY_BYTES, BadRequest

__all__ = ["MAX_BODY_BYTES", "BadRequest", "AppConnection", "RequestContext", "RequestStartLine",
           "body_length", "dispatch_to_app", "parse_headers", "wants_continue"]

log = logging.getLogger(__name__)


class RequestContext:
    """What ``HTTPServerRequest`` reads from ``connection.context``."""

    def __init__(self, peername: Any, tls: bool, client_cert: bool = False) -> None:
        self.address = peername
        self.client_cert = client_cert  # a verified TLS client certificate came with it
        inet = isinstance(peername, tuple) and len(peername) >= 2
        self.remote_ip: str = str(peername[0]) if inet else "0.0.0.0"
        self.protocol = "https" if tls else "http"
        self.trusted_downstream: set[str] = set()

    def __str__(self) -> str:
        return self.remote_ip


def _done() -> "asyncio.Future[None]":
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


class AppConnection(HTTPConnection):
    """Buffers one response from a RequestHandler and writes it whole."""

    def __init__(
        self, send: Callable[[bytes], None], context: RequestContext, method: str, keep_alive: bool
    ) -> None:
        self.send = send
        self.context = context
        self.method = method
        self.keep_alive = keep_alive
        self.start_line: Optional[ResponseStartLine] = None
        self.headers = HTTPHeaders()
        self.chunks: list[bytes] = []
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def write_headers(
        self,
        start_line: Union[RequestStartLine, ResponseStartLine],
        headers: HTTPHeaders,
        chunk: Optional[bytes] = None,
    ) -> "asyncio.Future[None]":
        assert isinstance(start_line, ResponseStartLine)
        self.start_line = start_line
        self.headers = headers
        if chunk:
            self.chunks.append(chunk)
        return _done()

    def write(self, chunk: bytes) -> "asyncio.Future[None]":
        self.chunks.append(chunk)
        return _done()

    def finish(self) -> None:
        if self.finished.done():
            return
        start = self.start_line or ResponseStartLine("HTTP/1.1", 500, "Internal Server Error")
        body = b"".join(self.chunks)
        headers = self.headers
        no_body = self.method == "HEAD" or start.code in (204, 304) or start.code < 200
        if "Content-Length" not in headers and not no_body:
            headers["Content-Length"] = str(len(body))
        headers.pop("Transfer-Encoding", None)
        headers["Connection"] = "keep-alive" if self.keep_alive else "close"
        reason = start.reason.encode("ascii", "replace").decode("ascii")
        lines = [f"HTTP/1.1 {start.code} {reason}"]
        lines.extend(f"{k}: {v}" for k, v in headers.get_all())
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.send(data if no_body else data + body)
        self.finished.set_result(None)

    def set_close_callback(self, callback: Any) -> None:
        pass  # the response is written whole; nothing streams to cancel


async def _maybe(result: Optional[Awaitable[None]]) -> None:
    if result is not None:
        await result


def parse_headers(header_block: bytes) -> HTTPHeaders:
    try:
        return HTTPHeaders.parse(header_block.decode("latin-1"))
    except HTTPInputError as e:
        raise BadRequest(400, f"malformed headers: {e}") from None


def body_length(headers: HTTPHeaders) -> int:
    """The request body's length; raises BadRequest for what we do not take."""
    if "Transfer-Encoding" in headers:
        raise BadRequest(411, "chunked request bodies are not supported; send Content-Length")
    value = headers.get("Content-Length", "0").strip()
    # ASCII digits only (str.isdigit takes '²'), no sign, no list of lengths, no 30-digit number
    if not (0 < len(value) <= 12 and all("0" <= c <= "9" for c in value)):
        raise BadRequest(400, f"invalid Content-Length {value[:40]!r}")
    length = int(value)
    if length > MAX_BODY_BYTES:
        raise BadRequest(413, f"request body over {MAX_BODY_BYTES} bytes")
    return length


def wants_continue(headers: HTTPHeaders) -> bool:
    return headers.get("Expect", "").lower() == "100-continue"


async def dispatch_to_app(
    app: Application,
    server: object,
    conn: AppConnection,
    start_line: RequestStartLine,
    headers: HTTPHeaders,
    body: bytes,
) -> bool:
    """Serve one request with ``app``; return whether to keep the connection."""
    delegate = app.start_request(server, conn)
    try:
        await _maybe(delegate.headers_received(start_line, headers))
        if body:
            await _maybe(delegate.data_received(body))
        delegate.finish()
    except HTTPInputError as e:
        raise BadRequest(400, f"malformed request: {e}") from None
    except Exception:
        # Handler errors are answered by RequestHandler.write_error; this is
        # a failure before a handler exists (routing, construction).
        log.exception("REST API %s %s failed", start_line.method, start_line.path)
        if conn.finished.done():
            return False  # a response went out already; just drop the connection
        raise BadRequest(500, "internal error") from None
    await conn.finished
    return conn.keep_alive
