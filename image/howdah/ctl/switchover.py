"""howdahctl switchover: hand the leader lock to a healthy replica, now or at a set time.

The request goes to the leader's REST API (POST /switchover); when that API
does not answer, the failover key is written to the DCS directly, which the
agents act on in the same way. `failover` shares this module's machinery.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from . import listing
from .api import Unreachable
from .context import Ctx
from .dcs import Snapshot
from .errors import CtlError
from .ui import ask, confirm, wait_for

TIMEOUT = 180.0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("switchover", help="planned switchover to another member")
    p.add_argument("--leader", "--primary", dest="leader", help="the current leader (checked)")
    p.add_argument("--candidate", help="the member to promote (default: the healthiest)")
    p.add_argument("--scheduled", metavar="TIME",
                   help="ISO 8601 time, e.g. 2026-11-21T09:30+00:00 (default: now)")
    p.add_argument("--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(run=run)


def parse_when(text: str | None, now: datetime | None = None) -> datetime | None:
    """None for 'now'/empty; an aware datetime (local zone if none given) otherwise."""
    if text is None or text.strip().lower() in ("", "now"):
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CtlError(f"cannot read {text!r} as a time: use ISO 8601, "
                       "e.g. 2026-11-21T09:30 or 2026-11-21T09:30+00:00") from None
    if when.tzinfo is None:
        when = when.astimezone()
    if when <= (now or datetime.now(timezone.utc)):
        raise CtlError(f"{when.isoformat()} is in the past; leave --scheduled out to act now")
    return when


def eligible(snap: Snapshot) -> list[str]:
    return [m.name for m in snap.view.members
            if m.name != snap.leader_name and not m.nofailover and m.state == "running"]


def check_candidate(snap: Snapshot, candidate: str | None) -> None:
    if candidate is None:
        return
    member = snap.member(candidate)
    if candidate == snap.leader_name:
        raise CtlError(f"{candidate} is already the leader; name another member")
    if member.nofailover:
        raise CtlError(f"{candidate} is tagged nofailover (or failover_priority <= 0) and cannot "
                       "become the leader")


def request(ctx: Ctx, snap: Snapshot, action: str, body: dict[str, Any],
            target: str | None) -> str:
    """POST /<action> to the leader (or `target`); DCS fallback when no API answers."""
    via = snap.leader_name or target
    if via is None:
        raise CtlError("no leader and no candidate to send the request to")
    try:
        reply = ctx.api.checked(snap.member(via), "POST", f"/{action}", body,
                                timeout=TIMEOUT)
        return reply.text or f"{action} accepted"
    except Unreachable as exc:
        ctx.stderr.write(f"{exc}; writing the failover key in the DCS instead\n")
    key = {k: v for k, v in {"leader": body.get("leader"), "member": body.get("candidate"),
                             "scheduled_at": body.get("scheduled_at")}.items() if v}
    ctx.dcs().put_failover(key)
    return "failover key written to the DCS"


def wait_new_leader(ctx: Ctx, old: str | None, candidate: str | None) -> str:
    def check() -> tuple[str | None, str]:
        snap = ctx.dcs().snapshot()
        name = snap.leader_name
        member = snap.view.leader_member
        ok = name is not None and name != old and (candidate is None or name == candidate)
        if ok and member is not None and member.role == "primary" and member.state == "running":
            return name, ""
        return None, f"leader {name or 'none'}"
    return wait_for("the new leader", check, TIMEOUT, ctx.progress())


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    snap = ctx.dcs().existing()
    leader = snap.leader_name
    if leader is None:
        raise CtlError(f"cluster {ctx.scope!r} has no leader: use `howdahctl failover`")
    if args.leader and args.leader != leader:
        raise CtlError(f"{args.leader} is not the leader of cluster {ctx.scope!r} ({leader} is)")
    candidates = eligible(snap)
    candidate = args.candidate
    if candidate is None and not args.force:
        candidate = ask(f"Candidate ({', '.join(candidates) or 'none'}; empty for any)",
                        "", ctx.stdin, ctx.stdout) or None
    check_candidate(snap, candidate)
    if candidate is None and not candidates:
        raise CtlError("no running member can take over (all others are down or nofailover)")
    when = parse_when(args.scheduled)
    ctx.say(listing.render(snap))
    target = candidate or "the healthiest replica"
    at = f" at {when.isoformat()}" if when else ""
    confirm(f"Switch over cluster {ctx.scope!r} from {leader} to {target}{at}?",
            args.force, ctx.stdin, ctx.stdout)
    body: dict[str, Any] = {"leader": leader}
    if candidate:
        body["candidate"] = candidate
    if when:
        body["scheduled_at"] = when.isoformat()
    ctx.say(request(ctx, snap, "switchover", body, candidate))
    if when:
        return 0
    new = wait_new_leader(ctx, leader, candidate)
    ctx.say(f"{new} is the new leader")
    ctx.say(listing.render(ctx.dcs().snapshot()))
    return 0
