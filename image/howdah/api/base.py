"""The base of every handler that reads the DCS or acts on the agent.

Handlers run on the API's event loop, which also answers the health probes,
so anything that blocks (a DCS request, an HTTP call to a peer) runs in a
worker thread through :meth:`ControlHandler.blocking`, and waiting is done
with ``await asyncio.sleep``.  No request may end in a 500 with a traceback:
an unreachable DCS answers 503, anything unexpected is logged and answers
503 too, with a one-line reason.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, TypeVar

from tornado.web import HTTPError

from howdah.agent.control import Control
from howdah.api.app import ApiContext, ApiError, JsonHandler
from howdah.api.security import MUTATING, Guard, Network, member_networks
from howdah.dcs.base import DcsError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Deps:
    """What the control handlers share; one per API server."""

    control: Control
    guard: Guard = field(default_factory=Guard)
    # Filled in by howdah.api.routes: the in-memory scheduled restart.
    restarts: Any = None


class TextReply(Exception):
    """Answer ``code`` with a plain-text ``message`` (patronictl prints it)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ControlHandler(JsonHandler):
    deps: Deps
    # A GET that exposes the configuration: behind the credentials when
    # restapi.auth_reads is on (/config, /cluster, /history, /metrics).
    sensitive_read = False

    def initialize(self, ctx: ApiContext, deps: Deps) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.deps = deps

    @property
    def control(self) -> Control:
        return self.deps.control

    async def prepare(self) -> None:
        guard = self.deps.guard
        method = self.request.method or "GET"
        members: tuple[Network, ...] = ()
        if guard.include_members and method in MUTATING:
            urls = [m.api_url for m in self.control.view().members if m.api_url]
            members = await self.blocking(member_networks, urls)
        context = getattr(self.request.connection, "context", None)
        refusal = guard.refusal(method, self.request.remote_ip or "",
                                self.request.headers.get("Authorization"), members,
                                client_cert=bool(getattr(context, "client_cert", False)),
                                sensitive=self.sensitive_read)
        if refusal is not None:
            for key, value in refusal.headers.items():
                self.set_header(key, value)
            self.write_text(refusal.code, refusal.message)

    # -- replies ------------------------------------------------------------
    def write_text(self, code: int, message: str) -> None:
        self.set_status(code)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message)

    def _handle_request_exception(self, e: BaseException) -> None:
        if self._finished:
            return
        if isinstance(e, TextReply):
            self.write_text(e.code, e.message)
        elif isinstance(e, DcsError):
            log.warning("REST API %s %s: %s", self.request.method, self.request.path, e)
            self.write_text(503, f"DCS unavailable: {e}")
        elif isinstance(e, (ApiError, HTTPError)):
            super()._handle_request_exception(e)
        else:
            log.error("REST API %s %s failed", self.request.method, self.request.path, exc_info=e)
            self.write_text(503, f"internal error: {type(e).__name__}")

    # -- helpers ------------------------------------------------------------
    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def json_body(self, optional: bool = False) -> dict[str, Any]:
        """The request body as a JSON object; 400 with a reason otherwise."""
        raw = self.request.body
        if not raw or not raw.strip():
            if optional:
                return {}
            raise TextReply(400, "a JSON object is required as the request body")
        doc = parse_json(raw)
        if not isinstance(doc, dict):
            raise TextReply(400, f"request body must be a JSON object, not {type(doc).__name__}")
        if not doc and not optional:
            raise TextReply(400, "the request body must not be an empty object")
        return doc


MAX_JSON_DEPTH = 32
MAX_JSON_NUMBER_DIGITS = 30


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_NUMBER_DIGITS:
        raise ValueError(f"a number of more than {MAX_JSON_NUMBER_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 2 * MAX_JSON_NUMBER_DIGITS:
        raise ValueError(f"a number written with more than {2 * MAX_JSON_NUMBER_DIGITS} characters")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def parse_json(raw: bytes) -> Any:
    """A request body as JSON; TextReply(400) for anything Howdah will not read: bad UTF-8 or
    syntax, NaN/Infinity, numbers too long or out of range, nesting deeper than MAX_JSON_DEPTH."""
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_int=_int,
                         parse_float=_float)
    except RecursionError:
        raise TextReply(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise TextReply(400, f"request body is not valid JSON: {e}") from None
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise TextReply(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return doc


def text_field(body: Mapping[str, Any], key: str) -> Optional[str]:
    """An optional string field; 400 when it has another type."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TextReply(400, f"{key} must be a string")
    return value
