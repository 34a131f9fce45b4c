"""The REST API server: its own event loop thread, Tornado handlers.

The agent's HA loop runs in the main thread and blocks on I/O, so the API
runs its event loop in a daemon thread.  It reads the agent's state only
through ``get_status()``, which returns the latest immutable
:class:`~howdah.core.status.NodeStatus` (publishing one is a single reference
assignment, atomic under the GIL)::

    api = RestApiServer(lambda: agent.status, certfile=..., keyfile=...)
    api.start("0.0.0.0", 8008)
    ...
    api.stop()
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

from howdah.api.front import FrontServer
from howdah.api.responder import StatusResponder
from howdah.core.status import NodeStatus
from howdah.config.tls import CertReloader, server_context

if TYPE_CHECKING:
    from tornado.web import Application

    from howdah.api.app import Route

__all__ = ["RestApiServer", "tls_context", "new_event_loop", "bind_sockets"]

log = logging.getLogger(__name__)

def tls_context(
    certfile: str,
    keyfile: Optional[str] = None,
    cafile: Optional[str] = None,
    verify_client: Optional[str] = None,
    keyfile_password: Optional[str] = None,
    ciphers: Optional[str] = None,
) -> ssl.SSLContext:
    """Server TLS context from the ``restapi`` TLS keys (see howdah.config.tls);
    raises TlsConfigError (a ValueError) naming the field."""
    ctx = server_context({"certfile": certfile, "keyfile": keyfile, "cafile": cafile,
                          "verify_client": verify_client, "keyfile_password": keyfile_password,
                          "ciphers": ciphers})
    assert ctx is not None
    return ctx


def new_event_loop(use_uvloop: Optional[bool] = None) -> asyncio.AbstractEventLoop:
    """A uvloop loop when wanted (None: if importable), else asyncio's."""
    if use_uvloop is not False:
        try:
            import uvloop
        except ImportError:
            if use_uvloop:
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def bind_sockets(port: int, address: Optional[str], backlog: int = 1024) -> list[socket.socket]:
    """Listening, non-blocking sockets for every address ``address`` resolves
    to (None: every interface, IPv4 and IPv6); port 0 picks one free port for all."""
    flags = socket.AI_PASSIVE | (socket.AI_NUMERICHOST if address and ":" in address else 0)
    infos = socket.getaddrinfo(address, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags)
    sockets: list[socket.socket] = []
    seen: set[Any] = set()
    try:
        for family, kind, proto, _, sockaddr in sorted(infos, key=lambda i: i[0] != socket.AF_INET):
            if sockaddr in seen or (family == socket.AF_INET6 and not socket.has_ipv6):
                continue
            seen.add(sockaddr)
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if port == 0 and sockets:  # the same free port on every address
                    sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
                sock.bind(sockaddr)
            except OSError:
                sock.close()
                if family == socket.AF_INET6 and sockets:
                    continue  # IPv6 disabled on the host: IPv4 alone is fine
                raise
            sock.setblocking(False)
            sock.listen(backlog)
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_address(host: str) -> Optional[str]:
    host = host.strip()
    if host in ("", "*"):
        return None  # every interface, IPv4 and IPv6
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


class RestApiServer:
    """Runs the REST API on a daemon thread; ``start`` binds, ``stop`` ends it.

    ``use_uvloop``: None runs the loop on uvloop when it is importable
    (Debian's python3-uvloop in the image), True requires it, False never.
    ``idle_timeout`` closes keep-alive connections idle that long, and
    requests whose body stalls that long.
    """

    def __init__(
        self,
        get_status: Callable[[], NodeStatus],
        clock: Callable[[], float] = time.monotonic,
        *,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        cafile: Optional[str] = None,
        verify_client: Optional[str] = None,
        keyfile_password: Optional[str] = None,
        ciphers: Optional[str] = None,
        use_uvloop: Optional[bool] = None,
        idle_timeout: float = 60.0,
        extra_routes: Union[Sequence["Route"], Callable[[], Sequence["Route"]]] = (),
    ) -> None:
        self.responder = StatusResponder(get_status, clock)
        self._get_status, self._clock, self._extra_routes = get_status, clock, extra_routes
        self._app: Optional["Application"] = None
        self._tls = (certfile, keyfile, cafile, verify_client, keyfile_password, ciphers)
        self._use_uvloop = use_uvloop
        self._idle_timeout = idle_timeout
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_event: Optional[asyncio.Event] = None
        self._error: Optional[BaseException] = None
        self.port = 0

    @property
    def app(self) -> "Application":
        """The Tornado application, built on first use (``extra_routes`` may be
        a callable, so the handlers' modules load only then too)."""
        if self._app is None:
            from howdah.api.app import make_app
            extra = self._extra_routes
            routes = extra() if callable(extra) else extra
            self._app = make_app(self._get_status, self._clock, routes, responder=self.responder)
        return self._app

    def is_alive(self) -> bool:
        """True while the API thread runs (started and neither stopped nor crashed)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def scheme(self) -> str:
        return "https" if self._tls[0] else "http"

    def start(self, listen_host: str, port: int) -> None:
        """Bind ``listen_host:port`` (port 0: any free port, see ``.port``) and serve.

        Bind errors (OSError) and TLS errors (howdah.config.tls.TlsConfigError, a
        ValueError naming the field) raise here, in the caller's thread.
        """
        if self._thread is not None:
            raise RuntimeError("REST API server already started")
        certfile, *rest = self._tls
        ssl_ctx = tls_context(certfile, *rest) if certfile else None
        sockets = bind_sockets(port, _bind_address(listen_host))
        self.port = sockets[0].getsockname()[1]
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sockets, ssl_ctx, started), name="howdah-restapi", daemon=True
        )
        self._thread.start()
        started.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError(f"REST API failed to start: {self._error}") from self._error
        log.info("REST API listening on %s:%d (%s)", listen_host or "*", self.port, self.scheme)

    def _run(self, sockets: list[socket.socket], ssl_ctx: Optional[ssl.SSLContext], started: threading.Event) -> None:
        try:
            loop = new_event_loop(self._use_uvloop)
            asyncio.set_event_loop(loop)
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._error = e
            started.set()
            return
        try:
            loop.run_until_complete(self._serve(sockets, ssl_ctx, started))
        except BaseException as e:  # noqa: BLE001
            self._error = e
            log.exception("REST API thread stopped")
        finally:
            started.set()
            loop.close()

    async def _serve(
        self, sockets: list[socket.socket], ssl_ctx: Optional[ssl.SSLContext], started: threading.Event
    ) -> None:
        server = FrontServer(self.responder, lambda: self.app, ssl_ctx, self._idle_timeout)
        await server.start(sockets)
        reload_task = None
        if ssl_ctx is not None:
            certfile, keyfile, cafile, *_ = self._tls
            reloader = CertReloader(ssl_ctx, {"certfile": certfile, "keyfile": keyfile, "cafile": cafile,
                                              "keyfile_password": self._tls[4]})
            reload_task = asyncio.ensure_future(self._watch_certificates(reloader))
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        started.set()
        await self._stop_event.wait()
        if reload_task is not None:
            reload_task.cancel()
        await server.stop()

    CERT_CHECK_SECONDS = 5.0

    async def _watch_certificates(self, reloader: CertReloader) -> None:
        while True:
            await asyncio.sleep(self.CERT_CHECK_SECONDS)
            reloader.check()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close connections, and join the thread."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # the loop closed meanwhile
        thread.join(timeout)
        self._thread = None
