"""howdahctl pause / resume: maintenance mode through the `pause` key of the config.

The change is a compare-and-swap on the DCS config (as PATCH /config
{"pause": true|null} would write it); --wait polls every member's
GET /patroni until all of them report the new mode.
"""
from __future__ import annotations

import argparse

from .api import Unreachable
from .context import Ctx
from howdah.core.merge import merge_patch as merge
from .errors import CtlError
from .ui import wait_for

TIMEOUT = 120.0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    for name, what in (("pause", "stop automatic failover (maintenance mode)"),
                       ("resume", "resume automatic failover")):
        p = sub.add_parser(name, help=what)
        p.add_argument("--wait", action="store_true",
                       help="wait until every member reports the change")
        p.set_defaults(run=run, paused=name == "pause")


def members_paused(ctx: Ctx, want: bool) -> tuple[bool, str]:
    """(all members report pause == want, who does not yet)."""
    snap = ctx.dcs().snapshot()
    waiting = []
    for member in snap.view.members:
        try:
            body = ctx.api.call(member, "GET", "/patroni", timeout=3.0).body
        except Unreachable:
            waiting.append(f"{member.name} (no answer)")
            continue
        if not isinstance(body, dict) or bool(body.get("pause")) != want:
            waiting.append(member.name)
    return not waiting and bool(snap.view.members), ", ".join(waiting)


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    want: bool = args.paused
    word = "paused" if want else "resumed"
    snap = ctx.dcs().existing()
    if snap.paused == want:
        raise CtlError(f"cluster {ctx.scope!r} is already {'paused' if want else 'not paused'}")
    ctx.dcs().cas_config(merge(snap.view.config, {"pause": True if want else None}),
                         snap.view.config_index)
    ctx.say(f"cluster {ctx.scope!r}: {'maintenance mode on' if want else 'maintenance mode off'}")
    if args.wait:
        wait_for(f"every member to report {word}", lambda: members_paused(ctx, want),
                 TIMEOUT, ctx.progress(), 1.0)
        ctx.say(f"every member {'is paused' if want else 'has resumed'}")
    return 0
