"""POST /switchover, POST /failover, DELETE /switchover.

The request is checked against a fresh DCS read, then written to the DCS
``failover`` key; the agents carry it out (the leader hands its lock to the
candidate, or with no leader only the named member races).  An immediate
request waits for the leader key to change hands and answers with the
outcome; a scheduled one answers 202 at once.  Status codes and the texts
patronictl prints are Patroni's.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.request
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from howdah.api.base import ControlHandler, TextReply, text_field
from howdah.api.views import read_cluster
from howdah.core.models import ClusterView, Member, failover_allowed, truthy

RESULT_TIMEOUT = 30.0
POLL_EVERY = 0.1
PEER_TIMEOUT = 2.0


def parse_schedule(raw: Any, action: str, now: datetime | None = None) -> datetime:
    """The scheduled time; TextReply 400 without a time zone, 422 if unusable."""
    if not isinstance(raw, str):
        raise TextReply(422, "Unable to parse scheduled timestamp. It should be in an unambiguous format, "
                             "e.g. ISO 8601")
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TextReply(422, "Unable to parse scheduled timestamp. It should be in an unambiguous format, "
                             "e.g. ISO 8601") from None
    if when.tzinfo is None:
        raise TextReply(400, f"Timezone information is mandatory for the scheduled {action}")
    if when < (now or datetime.now(timezone.utc)):
        raise TextReply(422, f"Cannot schedule {action} in the past")
    return when


def check_request(action: str, body: Mapping[str, Any], view: ClusterView) -> tuple[str, dict[str, Any]]:
    """Validate; returns the effective action and the failover key's value."""
    leader = text_field(body, "leader")
    candidate = text_field(body, "candidate") or text_field(body, "member")
    raw_when = body.get("scheduled_at")
    paused = truthy(view.config.get("pause"))
    if action == "failover" and not candidate:
        raise TextReply(400, "Failover could be performed only to a specific candidate")
    if action == "switchover" and not leader:
        raise TextReply(400, "Switchover could be performed only from a specific leader")
    when: datetime | None = None
    if raw_when not in (None, ""):
        if action == "failover":
            raise TextReply(400, "Failover can't be scheduled")
        if paused:
            raise TextReply(400, "Can't schedule switchover in the paused state")
        when = parse_schedule(raw_when, action)
    if paused and not candidate:
        raise TextReply(400, "Switchover is possible only to a specific candidate in a paused state")
    if action == "failover" and leader:
        action = "switchover"  # a leader named: Patroni treats it as a switchover
    if leader and leader == candidate:
        raise TextReply(400, "Switchover target and source are the same")
    current = view.leader.name if view.leader else None
    if candidate and candidate == current and not leader:
        raise TextReply(400, f"Member {candidate} is already the leader")
    if when is None:
        if leader and leader != current:
            raise TextReply(412, "leader name does not match")
        if candidate and action == "switchover" and sync_mode(view) == "on" \
                and candidate not in view.sync_standbys:
            # as Patroni: only a synchronous standby has every acknowledged commit
            raise TextReply(412, "candidate name does not match with sync_standby")
        if candidate and view.member(candidate) is None:
            raise TextReply(412, "candidate does not exists")
    value: dict[str, Any] = {}
    if leader:
        value["leader"] = leader
    if candidate:
        value["member"] = candidate
    if when is not None:
        value["scheduled_at"] = when.isoformat()
    return action, value


def sync_mode(view: ClusterView) -> str:
    """"on", "quorum" or "off", from the DCS config (off in a standby cluster)."""
    value = view.config.get("synchronous_mode", False)
    if view.config.get("standby_cluster"):
        return "off"
    if isinstance(value, str) and value.strip().lower() == "quorum":
        return "quorum"
    return "on" if truthy(value) else "off"


def candidates(view: ClusterView, candidate: str | None) -> list[Member]:
    if candidate:
        m = view.member(candidate)
        return [m] if m else []
    if sync_mode(view) == "on":  # only the synchronous standbys may take over
        return [m for m in view.members if m.name in view.sync_standbys]
    current = view.leader.name if view.leader else None
    return [m for m in view.members if m.name != current and m.api_url]


def peer_healthy(member: Member) -> bool:
    """The member answers GET /patroni as running and may be promoted."""
    if not failover_allowed(member.tags):
        return False
    # Only the peer's health is read here: its certificate is not what we judge.
    context = ssl._create_unverified_context() if member.api_url.startswith("https") else None
    try:
        with urllib.request.urlopen(member.api_url, timeout=PEER_TIMEOUT, context=context) as resp:
            doc = json.loads(resp.read().decode("utf-8"))
    except Exception:  # noqa: BLE001 - unreachable or garbled: not a candidate
        return False
    if not isinstance(doc, dict):
        return False
    tags = doc.get("tags") if isinstance(doc.get("tags"), dict) else {}
    return doc.get("state") == "running" and failover_allowed(tags or {})


def any_healthy(members: Sequence[Member]) -> bool:
    return any(peer_healthy(m) for m in members)


class FailoverHandler(ControlHandler):
    action = "failover"

    async def post(self) -> None:
        body = self.json_body()
        read = await self.blocking(read_cluster, self.control.dcs)
        view = read.view
        action, value = check_request(self.action, body, view)
        if "scheduled_at" not in value:
            members = candidates(view, value.get("member"))
            if not members and sync_mode(view) == "on":
                raise TextReply(412, f"{action} is not possible: can not find sync_standby")
            if not members:
                raise TextReply(412, f"{action} is not possible: cluster does not have members except leader")
            if not await self.blocking(any_healthy, members):
                raise TextReply(412, f"{action} is not possible: no good candidates have been found")
        if not await self.blocking(self.control.dcs.write_failover, value):
            raise TextReply(503, "failed to write failover key into DCS")
        self.control.wake()
        if "scheduled_at" in value:
            raise TextReply(202, f"{action.title()} scheduled")
        old = view.leader.name if view.leader else None
        code, message = await self.outcome(action, old, value.get("member"))
        self.write_text(code, message)

    async def outcome(self, action: str, old: str | None, candidate: str | None) -> tuple[int, str]:
        verb = action[:-4]  # switch / fail
        deadline = time.monotonic() + RESULT_TIMEOUT
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_EVERY)
            try:
                view = (await self.blocking(read_cluster, self.control.dcs)).view
            except Exception:  # noqa: BLE001 - keep polling through a DCS hiccup
                continue
            if view.leader is not None and view.leader.name != old:
                new = view.leader.name
                if not candidate or candidate == new:
                    return 200, f'Successfully {verb}ed over to "{new}"'
                return 200, f'{verb.title()}ed over to "{new}" instead of "{candidate}"'
            if not view.failover:
                return 503, f"{action.title()} failed"
        return 503, f"{action.title()} status unknown"


class SwitchoverHandler(FailoverHandler):
    action = "switchover"

    async def delete(self) -> None:
        read = await self.blocking(read_cluster, self.control.dcs)
        if not read.view.failover.get("scheduled_at"):
            raise TextReply(404, "no switchover is scheduled")
        if not await self.blocking(self.control.dcs.clear_failover):
            raise TextReply(409, "could not clear the failover key")
        self.control.wake()
        self.write_text(200, "scheduled switchover deleted")
