"""howdahctl failover: make a named member the leader, healthy leader or not."""
from __future__ import annotations

import argparse

from . import listing
from .context import Ctx
from .errors import CtlError
from .switchover import check_candidate, eligible, request, wait_new_leader
from .ui import ask, confirm


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("failover", help="manual failover to a named member")
    p.add_argument("--candidate", help="the member to promote (required with --force)")
    p.add_argument("--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(run=run)


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    snap = ctx.dcs().existing()
    leader = snap.leader_name
    candidate = args.candidate
    if candidate is None and not args.force:
        candidate = ask(f"Candidate ({', '.join(eligible(snap)) or 'none'})", "",
                        ctx.stdin, ctx.stdout) or None
    if candidate is None:
        raise CtlError("failover needs --candidate: the member to promote")
    check_candidate(snap, candidate)
    ctx.say(listing.render(snap))
    demote = f", demoting the current leader {leader}" if leader else ""
    confirm(f"Fail over cluster {ctx.scope!r} to {candidate}{demote}?",
            args.force, ctx.stdin, ctx.stdout)
    ctx.say(request(ctx, snap, "failover", {"candidate": candidate}, candidate))
    new = wait_new_leader(ctx, None, candidate)
    ctx.say(f"{new} is the new leader")
    ctx.say(listing.render(ctx.dcs().snapshot()))
    return 0
