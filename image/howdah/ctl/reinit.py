"""howdahctl reinit: rebuild a replica from the leader (POST /reinitialize)."""
from __future__ import annotations

import argparse
from typing import Any

from howdah.core.models import Member

from .api import Unreachable
from .context import Ctx
from .errors import CtlError
from .ui import confirm, wait_for

TIMEOUT = 600.0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("reinit", help="wipe a replica's data and clone it from the leader")
    p.add_argument("member", metavar="MEMBER")
    p.add_argument("--force", action="store_true",
                   help="do not ask, and cancel whatever the member is doing")
    p.add_argument("--wait", action="store_true", help="wait until the member runs again")
    p.set_defaults(run=run)


def status_of(ctx: Ctx, member: Member) -> dict[str, Any]:
    try:
        reply = ctx.api.call(member, "GET", "/patroni", timeout=3.0)
    except Unreachable:
        return {}
    return reply.body if isinstance(reply.body, dict) else {}


def wait_rebuilt(ctx: Ctx, member: Member, before: dict[str, Any]) -> None:
    """Until the member runs a postmaster started after the request (or was seen down)."""
    seen_down = False

    def check() -> tuple[bool, str]:
        nonlocal seen_down
        doc = status_of(ctx, member)
        state = str(doc.get("state", "no answer"))
        seen_down = seen_down or state != "running"
        restarted = doc.get("postmaster_start_time") != before.get("postmaster_start_time")
        return state == "running" and (seen_down or restarted), state
    wait_for(f"{member.name} to be rebuilt and running", check, TIMEOUT, ctx.progress(), 1.0)


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    snap = ctx.dcs().existing()
    member = snap.member(args.member)
    if member.name == snap.leader_name:
        raise CtlError(f"{member.name} is the leader; only a replica can be reinitialized")
    confirm(f"Wipe the data directory of {member.name} and clone it again from the leader?",
            args.force, ctx.stdin, ctx.stdout)
    before = status_of(ctx, member) if args.wait else {}
    reply = ctx.api.checked(member, "POST", "/reinitialize", {"force": bool(args.force)},
                            ok=(200, 202))
    ctx.say(f"{member.name}: {reply.text or 'reinitialize started'}")
    if args.wait:
        wait_rebuilt(ctx, member, before)
        ctx.say(f"{member.name}: reinitialized and running")
    return 0
