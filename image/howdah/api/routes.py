"""The REST API's cluster views and actions, as route rows for make_app.

``control_routes(control, restapi_config)`` returns the rows the agent passes
to :class:`~howdah.api.server.RestApiServer` as ``extra_routes``::

    RestApiServer(get_status, extra_routes=control_routes(agent.control, cfg.restapi))
"""
from __future__ import annotations

from typing import Any, Mapping

from howdah.agent.control import Control
from howdah.api.app import Route
from howdah.api.base import ControlHandler, Deps, TextReply
from howdah.api.config_api import ConfigHandler
from howdah.api.requests import (
    ReinitializeHandler, ReloadHandler, RestartHandler, RestartSchedule,
)
from howdah.api.security import Guard
from howdah.core.status import PRIMARY
from howdah.api.switchover import FailoverHandler, SwitchoverHandler
from howdah.api.views import ClusterRead, cluster_json, history_json, read_cluster
from howdah.dcs.base import DcsError


class ClusterHandler(ControlHandler):
    sensitive_read = True

    async def get(self) -> None:
        try:
            read = await self.blocking(read_cluster, self.control.dcs)
        except DcsError:
            read = ClusterRead(self.control.view())  # the agent's last view beats nothing
        schedule: RestartSchedule = self.deps.restarts
        mine = {self.control.name: schedule.current.as_json()} if schedule.current else {}
        self.write_json(200, cluster_json(read, self.control.scope, mine))


class HistoryHandler(ControlHandler):
    sensitive_read = True

    async def get(self) -> None:
        try:
            view = (await self.blocking(read_cluster, self.control.dcs)).view
        except DcsError:
            view = self.control.view()
        self.write_json(200, history_json(view))


class MetricsHandler(ControlHandler):
    sensitive_read = True

    def get(self) -> None:
        # prometheus_client costs ~10 MB of RSS: load it on the first scrape,
        # not in every agent whether or not anything scrapes it
        from howdah.api.metrics import CONTENT_TYPE, render_metrics
        body = render_metrics(self.control.status, self.ctx.clock,
                              lambda: self.control.pending() is not None)
        self.set_status(200)
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(body)


class FailsafeHandler(ControlHandler):
    """GET /failsafe: the members of the /failsafe key ({name: api_url}), as the
    agent last read it; 502 when there is no such key (failsafe_mode off)."""

    def get(self) -> None:
        failsafe = self.control.view().failsafe
        if isinstance(failsafe, Mapping):
            self.write_json(200, dict(failsafe))
        else:
            self.write_json(502, {"error": "failsafe_mode is not enabled"})

    def post(self) -> None:
        """POST /failsafe from a leader running without the DCS (authenticated as every
        action, in prepare): 200 "Accepted" with our WAL position in the ``lsn``
        header, and this node follows that leader without racing for ttl; 500
        "Running as a leader" on a primary; 502 when failsafe_mode is off."""
        failsafe = getattr(self.control, "failsafe", None)
        if not self.control.settings().failsafe_mode or failsafe is None:
            self.write_text(502, "failsafe_mode is not enabled")
            return
        body = self.json_body()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise TextReply(400, "name must be the sending leader's member name")
        status = self.control.status()
        if status.pg_running and status.role == PRIMARY:
            self.write_text(500, "Running as a leader")
            return
        failsafe.accept(body)
        lsn = max(status.received_location or 0, status.replayed_location or 0)
        if lsn:
            self.set_header("lsn", str(lsn))
        self.write_text(200, "Accepted")


class ScheduledRestartView(ControlHandler):
    """GET /restart: the scheduled restart of this node, if any (Howdah's own)."""

    def get(self) -> None:
        schedule: RestartSchedule = self.deps.restarts
        if schedule.current is None:
            self.write_json(404, {"error": "no restarts are scheduled"})
        else:
            self.write_json(200, schedule.current.as_json())


class RestartRoutes(RestartHandler, ScheduledRestartView):
    pass


def control_routes(control: Control, restapi: Mapping[str, Any],
                   guard: Guard | None = None) -> list[Route]:
    deps = Deps(control=control, guard=guard or Guard.from_config(restapi))
    deps.restarts = RestartSchedule(control)
    kw: dict[str, Any] = {"deps": deps}
    return [
        (r"/cluster", ClusterHandler, kw),
        (r"/history", HistoryHandler, kw),
        (r"/config", ConfigHandler, kw),
        (r"/metrics", MetricsHandler, kw),
        (r"/switchover", SwitchoverHandler, kw),
        (r"/failover", FailoverHandler, kw),
        (r"/restart", RestartRoutes, kw),
        (r"/reload", ReloadHandler, kw),
        (r"/reinitialize", ReinitializeHandler, kw),
        (r"/failsafe", FailsafeHandler, kw),
    ]
