"""howdahctl list: members with role, state, timeline, lag and tags; --watch refreshes."""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Mapping
from urllib.parse import urlsplit

from howdah.core.models import Member

from .context import Ctx
from .dcs import Snapshot
from .ui import render_table

MB = 1024 * 1024
HEADERS = ("Member", "Host", "Role", "State", "TL", "Lag in MB", "Tags")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("list", help="show the cluster's members")
    p.add_argument("-w", "--watch", type=float, metavar="SECONDS",
                   help="refresh every SECONDS until interrupted")
    p.add_argument("-W", dest="watch", action="store_const", const=2.0,
                   help="refresh every 2 seconds")
    p.add_argument("-f", "--format", choices=("pretty", "json"), default="pretty")
    p.set_defaults(run=run)


def host_of(member: Member) -> str:
    parts = urlsplit(member.conn_url)
    if not parts.hostname:
        return ""
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def role_label(snap: Snapshot, member: Member) -> str:
    if member.name == snap.leader_name:
        return "Standby Leader" if member.role == "standby_leader" else "Leader"
    if member.name in snap.sync_standbys:
        return "Sync Standby"
    return "Replica"


def lag_bytes(snap: Snapshot, member: Member) -> int | None:
    """Bytes behind the leader's last position; None when unknown."""
    if member.name == snap.leader_name:
        return 0
    leader = snap.view.leader_member
    top = snap.view.optime if snap.view.optime is not None else (
        leader.xlog_location if leader else None)
    data = snap.member_data.get(member.name, {})
    if top is None or "xlog_location" not in data:
        return None
    return max(top - member.xlog_location, 0)


def state_label(snap: Snapshot, member: Member) -> str:
    rep = snap.member_data.get(member.name, {}).get("replication_state")
    return str(rep) if member.state == "running" and rep else member.state


def tags_text(tags: dict[str, Any] | Any) -> str:
    if not isinstance(tags, dict):
        return ""
    return ", ".join(f"{k}: {json.dumps(v) if not isinstance(v, str) else v}"
                     for k, v in sorted(tags.items()))


def scheduled_text(data: Mapping[str, Any]) -> str:
    """A member's scheduled restart as patronictl list shows it ("" when none)."""
    sched = data.get("scheduled_restart")
    if not isinstance(sched, Mapping) or not sched.get("schedule"):
        return ""
    text = str(sched["schedule"])
    if sched.get("postgres_version"):
        text += f" if version < {sched['postgres_version']}"
    return text


def reason_text(data: Mapping[str, Any]) -> str:
    """pending_restart_reason as patronictl shows it: a line 'name: old->new' per parameter,
    '[hidden - too long]' for a line longer than 50 characters."""
    lines = []
    for name, values in (data.get("pending_restart_reason") or {}).items():
        if isinstance(values, dict):
            text = f"{name}: {values.get('old_value', '')}->{values.get('new_value', '')}"
            lines.append(text if len(text) <= 50 else f"{name}: [hidden - too long]")
    return "\n".join(lines)


def member_rows(snap: Snapshot) -> list[dict[str, Any]]:
    rows = []
    for m in snap.view.members:
        lag = lag_bytes(snap, m)
        rows.append({
            "member": m.name, "host": host_of(m), "role": role_label(snap, m),
            "state": state_label(snap, m), "timeline": m.timeline or None,
            "lag": None if m.name == snap.leader_name else lag,
            "lag_mb": "" if m.name == snap.leader_name else
            ("unknown" if lag is None else round(lag / MB)),
            "tags": dict(m.tags),
            "pending_restart": bool(snap.member_data.get(m.name, {}).get("pending_restart")),
            "pending_restart_reason": reason_text(snap.member_data.get(m.name, {})),
            "scheduled_restart": scheduled_text(snap.member_data.get(m.name, {})),
        })
    return rows


def render(snap: Snapshot) -> str:
    rows = member_rows(snap)
    # as patronictl: these columns appear only when some member has a value
    pending = any(r["pending_restart"] for r in rows)
    reasons = any(r["pending_restart_reason"] for r in rows)
    scheduled = any(r["scheduled_restart"] for r in rows)
    tagged = any(r["tags"] for r in rows)
    headers = list(HEADERS[:-1]) + (["Pending restart"] if pending else []) \
        + (["Pending restart reason"] if reasons else []) \
        + (["Scheduled restart"] if scheduled else []) + (["Tags"] if tagged else [])
    table = [[r["member"], r["host"], r["role"], r["state"], r["timeline"] or "", r["lag_mb"]]
             + (["*" if r["pending_restart"] else ""] if pending else [])
             + ([r["pending_restart_reason"]] if reasons else [])
             + ([r["scheduled_restart"]] if scheduled else [])
             + ([tags_text(r["tags"])] if tagged else [])
             for r in rows]
    sysid = snap.view.initialize
    title = f"Cluster: {snap.scope}" + (f" ({sysid})" if sysid else "")
    lines = [render_table(headers, table, title)]
    if not rows:
        lines.append(" no members registered")
    if snap.paused:
        lines.append(" Maintenance mode: on")
    when = snap.view.failover.get("scheduled_at")
    if when:
        lines.append(f" Switchover scheduled at: {when}")
        for key, label in (("leader", "from"), ("member", "to")):
            if snap.view.failover.get(key):
                lines.append(f"                    {label}: {snap.view.failover[key]}")
    return "\n".join(lines)


def as_json(snap: Snapshot) -> str:
    return json.dumps({"scope": snap.scope, "pause": snap.paused, "members": member_rows(snap)})


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    draw = as_json if args.format == "json" else render
    if not args.watch:
        ctx.say(draw(ctx.dcs().snapshot()))
        return 0
    tty = ctx.stdout.isatty()
    try:
        while True:
            text = draw(ctx.dcs().snapshot())
            if tty:
                ctx.stdout.write("\033[H\033[2J")
            ctx.say(time.strftime("%Y-%m-%d %H:%M:%S %Z") + "\n" + text)
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
