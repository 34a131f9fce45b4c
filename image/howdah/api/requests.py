"""POST/DELETE /restart, POST /reload, POST /reinitialize.

The work itself is queued on the agent's :class:`~howdah.agent.control.Control`
and carried out by the HA loop; these handlers check the request, queue it,
and (for a restart) wait for the outcome without blocking the event loop.
A scheduled restart is kept in memory here and queued when it is due.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from howdah.agent.control import Control, Request, Ticket
from howdah.api.base import ControlHandler, TextReply
from howdah.core.status import NodeStatus
from howdah.api.switchover import parse_schedule
from howdah.core.models import truthy

log = logging.getLogger(__name__)
ROLES = ("primary", "standby_leader", "replica")
RESTART_KEYS = frozenset({"restart_pending", "role", "postgres_version", "timeout", "schedule"})
DEFAULT_RESTART_WAIT = 600.0
_VERSION_RE = re.compile(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*")
_TIMEOUT_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|min|h)?\s*")
_UNITS = {None: 1, "s": 1, "sec": 1, "min": 60, "h": 3600}


def version_number(text: Any) -> int:
    """'15.2' -> 150002, '9.6.3' -> 90603 (server_version_num style); 400 otherwise."""
    m = _VERSION_RE.fullmatch(str(text)) if isinstance(text, (str, int, float)) else None
    if m is None:
        raise TextReply(400, f"{text!r} is not a valid PostgreSQL version")
    major, minor, patch = (int(g) if g else 0 for g in m.groups())
    if major >= 10:
        return major * 10000 + minor
    return major * 10000 + minor * 100 + patch


def parse_timeout(value: Any) -> float:
    if isinstance(value, bool):
        raise TextReply(400, "Timeout should be a positive number of seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _TIMEOUT_RE.fullmatch(str(value))
        if m is None:
            raise TextReply(400, "Timeout should be a positive number of seconds")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not seconds > 0 or seconds > 86400 * 7:
        raise TextReply(400, "Timeout should be a positive number of seconds")
    return seconds


def check_restart_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Validated restart options (unknown keys and bad values: 400)."""
    opts: dict[str, Any] = {}
    for key, value in body.items():
        if key not in RESTART_KEYS:
            raise TextReply(400, f"Unknown filter for the scheduled restart: {key}")
        if key == "role":
            if value not in ROLES:
                raise TextReply(400, "PostgreSQL role should be either primary, standby_leader, or replica")
            opts["role"] = value
        elif key == "postgres_version":
            version_number(value)
            opts["postgres_version"] = str(value)
        elif key == "timeout":
            opts["timeout"] = parse_timeout(value)
        elif key == "restart_pending":
            opts["restart_pending"] = truthy(value)
        elif key == "schedule" and value not in (None, ""):
            opts["schedule"] = parse_schedule(value, "restart")
    return opts


def conditions_met(opts: Mapping[str, Any], s: NodeStatus) -> bool:
    if opts.get("restart_pending") and not s.pending_restart:
        return False
    if opts.get("role") and opts["role"] != s.role:
        return False
    version = opts.get("postgres_version")
    if version and s.server_version is not None and s.server_version >= version_number(version):
        return False
    return True


@dataclass
class Scheduled:
    at: datetime
    options: dict[str, Any]
    handle: asyncio.TimerHandle | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schedule": self.at.isoformat()}
        if self.options.get("postgres_version"):
            doc["postgres_version"] = self.options["postgres_version"]
        return doc

    def member_json(self, postmaster_start_time: str | None) -> dict[str, Any]:
        """As Patroni publishes it in the member key (patronictl list shows it)."""
        doc: dict[str, Any] = {"schedule": self.at.isoformat(), **self.options}
        if postmaster_start_time:
            doc["postmaster_start_time"] = postmaster_start_time
        return doc


class RestartSchedule:
    """At most one scheduled restart of this node, kept on the API's event loop."""

    def __init__(self, control: Control) -> None:
        self.control = control
        self.current: Scheduled | None = None

    def add(self, at: datetime, options: dict[str, Any]) -> bool:
        if self.current is not None:
            return False
        item = Scheduled(at, options)
        delay = max(0.0, (at - datetime.now(timezone.utc)).total_seconds())
        item.handle = asyncio.get_running_loop().call_later(delay, self._fire, item, 0)
        self.current = item
        self.control.publish_schedule(item.member_json(self.control.status().postmaster_start_time))
        return True

    def remove(self) -> bool:
        item, self.current = self.current, None
        if item is None:
            return False
        if item.handle is not None:
            item.handle.cancel()
        self.control.publish_schedule(None)
        return True

    def _fire(self, item: Scheduled, attempt: int) -> None:
        if self.current is not item:
            return
        if not conditions_met(item.options, self.control.status()):
            log.info("scheduled restart skipped: its conditions are not met")
            self.current = None
            self.control.publish_schedule(None)
            return
        if self.control.request(Request.RESTART, **item.options) is None and attempt < 600:
            item.handle = asyncio.get_running_loop().call_later(1.0, self._fire, item, attempt + 1)
            return
        log.info("scheduled restart queued")
        self.current = None
        self.control.publish_schedule(None)


def loop_stalled(control: Control, now: float) -> bool:
    """The HA loop has not completed a cycle for longer than ttl: nobody will
    carry the request out, so waiting for it is pointless."""
    s = control.status()
    return s.last_loop is not None and now - s.last_loop > s.ttl


async def wait_ticket(ticket: Ticket, timeout: float, control: Control | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while not ticket.done.is_set():
        now = time.monotonic()
        if now >= deadline:
            return False
        if control is not None and loop_stalled(control, now):
            control.cancel(ticket.kind)
            raise TextReply(503, "the HA loop is not running: request cancelled")
        await asyncio.sleep(0.1)
    return True


class RestartHandler(ControlHandler):
    async def post(self) -> None:
        opts = check_restart_body(self.json_body(optional=True))
        schedule: RestartSchedule = self.deps.restarts
        if "schedule" in opts:
            if self.control.settings().pause:
                raise TextReply(412, "Can't schedule restart in the paused state")
            at = opts.pop("schedule")
            if not schedule.add(at, opts):
                raise TextReply(409, "Another restart is already scheduled")
            raise TextReply(202, "Restart scheduled")
        if not conditions_met(opts, self.control.status()):
            raise TextReply(503, "restart conditions are not satisfied")
        ticket = self.control.request(Request.RESTART, **opts)
        if ticket is None:
            raise TextReply(503, "another operation is already in progress")
        wait = float(opts.get("timeout") or DEFAULT_RESTART_WAIT)
        if not await wait_ticket(ticket, wait, self.control):
            raise TextReply(503, f"restart did not finish within {wait:g}s")
        self.write_text(200 if ticket.ok else 503, ticket.message)

    async def delete(self) -> None:
        schedule: RestartSchedule = self.deps.restarts
        if schedule.remove():
            self.write_text(200, "scheduled restart deleted")
        else:
            self.write_text(404, "no restarts are scheduled")


class ReloadHandler(ControlHandler):
    async def post(self) -> None:
        if self.control.request(Request.RELOAD) is None:
            raise TextReply(503, "another operation is already in progress")
        self.write_text(202, "reload scheduled")


class ReinitializeHandler(ControlHandler):
    async def post(self) -> None:
        body = self.json_body(optional=True)
        force = truthy(body.get("force"))
        view = self.control.view()
        if view.leader is None:
            raise TextReply(503, "Cluster has no leader, can not reinitialize")
        if view.leader.name == self.control.name:
            raise TextReply(503, "I am the leader, can not reinitialize")
        ticket = self.control.request(Request.REINITIALIZE)
        if ticket is None and force:
            pending = self.control.pending()
            if pending is not None:
                self.control.cancel(pending.kind)
            ticket = self.control.request(Request.REINITIALIZE)
        if ticket is None:
            raise TextReply(503, "reinitialize already in progress")
        # The HA loop refuses at once what it cannot do (it leads meanwhile...).
        await wait_ticket(ticket, 2.0, self.control)
        if ticket.done.is_set() and not ticket.ok:
            raise TextReply(503, ticket.message)
        self.write_text(200, "reinitialize started")
