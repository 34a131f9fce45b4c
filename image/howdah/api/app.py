"""The Tornado application: the REST API's route table and handlers.

Health checks and GET /patroni are answered by :class:`StatusHandler` here
when the app is served by Tornado's own HTTP server (tests, embedding), and
by the fast front of :mod:`howdah.api.front` in production; both go through
the same :class:`~howdah.api.responder.StatusResponder`.  Every other request
is routed by this application.

The cluster views and actions (/cluster, /history, /config, /metrics,
/switchover, /failover, /restart, /reload, /reinitialize) live in
:mod:`howdah.api.routes`: the agent passes ``control_routes(control, restapi)``
as ``extra_routes``; their handlers (:mod:`howdah.api.base`) get the agent's
Control, never the agent.  Adding another endpoint: write a
:class:`JsonHandler` subclass, put what it needs on :class:`ApiContext` or
in the route's kwargs, and add a row to :func:`build_routes` - or pass
rows as ``extra_routes`` to :func:`make_app`.  For example::

    class ClusterHandler(JsonHandler):
        def get(self) -> None:
            self.write_json(200, cluster_as_json(self.ctx.get_cluster()))

    routes.append((r"/cluster", ClusterHandler, {"ctx": ctx}))
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Optional, Sequence

from tornado.web import Application, HTTPError, RequestHandler

from howdah.api.responder import STATUS_PATHS, StatusResponder
from howdah.core.status import NodeStatus

log = logging.getLogger(__name__)

# (path regex, handler class, handler kwargs), as tornado.web.Application takes them.
Route = tuple[str, type[RequestHandler], dict[str, Any]]

_CONTEXT_SETTING = "howdah_api_context"


@dataclass(frozen=True)
class ApiContext:
    """Everything a handler may use; handlers get this, never the agent."""

    get_status: Callable[[], NodeStatus]
    clock: Callable[[], float]
    responder: StatusResponder


class ApiError(HTTPError):
    """An HTTP error whose message goes into the JSON body (not the status line)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code)
        self.message = message


class JsonHandler(RequestHandler):
    """Base of every handler: JSON bodies and errors, no tracebacks, quiet logs."""

    ctx: ApiContext

    def initialize(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")

    def compute_etag(self) -> Optional[str]:
        return None  # bodies change every cycle; hashing them is wasted work

    def write_json(self, code: int, doc: Any) -> None:
        self.set_status(code)
        self.finish(json.dumps(doc, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Tornado's default writes an HTML page and, in debug mode, the
        # traceback.  Ours: the reason as JSON, the traceback only in the log.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.message if isinstance(exc, ApiError) else self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))

    def log_exception(
        self,
        typ: Optional[type[BaseException]],
        value: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if isinstance(value, HTTPError):
            log.debug("REST API %s %s: %s", self.request.method, self.request.path, value)
        else:
            log.error(
                "REST API %s %s failed", self.request.method, self.request.path,
                exc_info=(typ, value, tb),  # type: ignore[arg-type]
            )


class StatusHandler(JsonHandler):
    """GET /patroni and the health checks; HEAD and OPTIONS send the code only."""

    def get(self) -> None:
        reply = self.ctx.responder.reply(self.request.path, self.request.query)
        self.set_status(reply.code)
        self.finish(reply.body)

    def head(self) -> None:
        self.set_status(self.ctx.responder.reply(self.request.path, self.request.query).code)
        self.finish()

    def options(self) -> None:
        self.head()


class NotFoundHandler(JsonHandler):
    def prepare(self) -> None:
        raise ApiError(404, f"not found: {self.request.path}")


def build_routes(ctx: ApiContext) -> list[Route]:
    """The REST API's route table; later endpoints are added here."""
    status_paths = "|".join(re.escape(p) for p in sorted(STATUS_PATHS))
    return [
        (rf"(?:{status_paths})", StatusHandler, {"ctx": ctx}),
    ]


def _log_request(handler: RequestHandler) -> None:
    status = handler.get_status()
    level = logging.WARNING if status >= 500 else logging.DEBUG
    if log.isEnabledFor(level):
        req = handler.request
        log.log(level, "REST API %s %s %s %d", req.remote_ip, req.method, req.uri, status)


def make_app(
    get_status: Callable[[], NodeStatus],
    clock: Callable[[], float] = time.monotonic,
    extra_routes: Sequence[Route] = (),
    responder: Optional[StatusResponder] = None,
) -> Application:
    """Build the Tornado application serving the REST API.

    ``get_status`` returns the agent's latest snapshot (called on the API
    thread; the agent publishes by replacing a reference).  ``clock`` is the
    monotonic clock the snapshots' lease deadlines are measured on.
    ``extra_routes`` rows get ``ctx`` added to their handler kwargs.
    """
    ctx = ApiContext(get_status=get_status, clock=clock,
                     responder=responder or StatusResponder(get_status, clock))
    extra = [(pattern, handler, {"ctx": ctx, **kwargs}) for pattern, handler, kwargs in extra_routes]
    settings: dict[str, Any] = {
        "default_handler_class": NotFoundHandler,
        "default_handler_args": {"ctx": ctx},
        "log_function": _log_request,
        "compress_response": False,
        "serve_traceback": False,
        _CONTEXT_SETTING: ctx,
    }
    return Application([*build_routes(ctx), *extra], **settings)


def api_context(app: Application) -> ApiContext:
    """The :class:`ApiContext` an application was built with."""
    ctx = app.settings[_CONTEXT_SETTING]
    assert isinstance(ctx, ApiContext)
    return ctx
