"""What the REST API (and so howdahctl and patronictl) may ask of the agent.

Handlers run on the API thread; the agent's HA loop runs on the main thread.
Everything here is thread-safe: reads return immutable snapshots, and work on
postgres is queued as a request the HA loop carries out as a task, so the
loop stays the only thing that drives postgres.
"""
from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from howdah.core.status import NodeStatus
from howdah.core.models import ClusterView
from howdah.core.settings import Settings
from howdah.dcs.base import Dcs


class Request(str, enum.Enum):
    RESTART = "restart"
    REINITIALIZE = "reinitialize"
    RELOAD = "reload"


@dataclass
class Ticket:
    """A queued request; `done` is set by the HA loop with `ok` and `message`."""

    kind: Request
    options: Mapping[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    message: str = ""

    def finish(self, ok: bool, message: str) -> None:
        self.ok, self.message = ok, message
        self.done.set()

    def wait(self, timeout: float) -> bool:
        """True when the request finished (successfully or not) in time."""
        return self.done.wait(timeout)


class Control:
    """Handed to the REST API; never the agent itself."""

    def __init__(self, name: str, scope: str, dcs: Dcs,
                 get_view: Callable[[], ClusterView], get_settings: Callable[[], Settings],
                 get_status: Callable[[], NodeStatus], wake: threading.Event) -> None:
        self.name = name
        self.scope = scope
        self.dcs = dcs  # the API's own etcd client (python-etcd clients are not shared)
        self._get_view = get_view
        self._get_settings = get_settings
        self._get_status = get_status
        self._wake = wake
        self._lock = threading.Lock()
        self._pending: Ticket | None = None
        self.failsafe: Any = None  # howdah.agent.failsafe.Failsafe, set by the agent
        # The scheduled restart as the member key publishes it (set by the API
        # thread, read by the HA loop; None when nothing is scheduled)
        self.scheduled_restart: Mapping[str, Any] | None = None

    def view(self) -> ClusterView:
        return self._get_view()

    def fresh_view(self) -> ClusterView:
        """Read the DCS now (raises howdah.dcs.base.DcsError when unreachable)."""
        return self.dcs.get_cluster()

    def settings(self) -> Settings:
        return self._get_settings()

    def status(self) -> NodeStatus:
        return self._get_status()

    def wake(self) -> None:
        """Run an HA cycle now (after a DCS write the agent should act on)."""
        self._wake.set()

    def request(self, kind: Request, **options: Any) -> Ticket | None:
        """Queue work for the HA loop; None when another request is still pending."""
        with self._lock:
            if self._pending is not None and not self._pending.done.is_set():
                return None
            ticket = Ticket(kind, options)
            self._pending = ticket
        self.wake()
        return ticket

    def publish_schedule(self, doc: Mapping[str, Any] | None) -> None:
        """Publish (or, with None, withdraw) the scheduled restart in the member key."""
        self.scheduled_restart = dict(doc) if doc is not None else None
        self.wake()

    def pending(self) -> Ticket | None:
        with self._lock:
            t = self._pending
            return t if t is not None and not t.done.is_set() else None

    def cancel(self, kind: Request) -> bool:
        with self._lock:
            t = self._pending
            if t is None or t.kind != kind or t.done.is_set():
                return False
            t.finish(False, "cancelled")
            return True


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()
