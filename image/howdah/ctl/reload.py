"""howdahctl reload: make members re-read their configuration (POST /reload)."""
from __future__ import annotations

import argparse

from .context import Ctx
from .targets import ROLES, post_each, select
from .ui import confirm


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("reload", help="reload the configuration of members (default: all)")
    p.add_argument("members", nargs="*", metavar="MEMBER")
    p.add_argument("--role", choices=ROLES, default="any", help="only members with this role")
    p.add_argument("--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(run=run)


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    snap = ctx.dcs().existing()
    members = select(snap, args.members, args.role)
    confirm(f"Reload the configuration of {', '.join(m.name for m in members)}?",
            args.force, ctx.stdin, ctx.stdout)
    post_each(ctx, members, "/reload", None, "reload")
    return 0
