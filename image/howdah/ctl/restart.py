"""howdahctl restart: restart PostgreSQL on members, now, at a set time, or if pending."""
from __future__ import annotations

import argparse
from typing import Any

from .context import Ctx
from .switchover import parse_when
from .targets import ROLES, post_each, select
from .ui import confirm

API_ROLE = {"leader": "primary", "primary": "primary", "standby-leader": "standby_leader",
            "replica": "replica"}


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("restart", help="restart PostgreSQL on members (default: all)")
    p.add_argument("members", nargs="*", metavar="MEMBER")
    p.add_argument("--role", choices=ROLES, default="any", help="only members with this role")
    p.add_argument("--pending", action="store_true",
                   help="only members whose settings need a restart")
    p.add_argument("--scheduled", metavar="TIME", help="ISO 8601 time (default: now)")
    p.add_argument("--pg-version", help="only if PostgreSQL is older than this version")
    p.add_argument("--timeout", type=int, help="seconds to wait for PostgreSQL to start")
    p.add_argument("--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(run=run)


def body_for(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.pending:
        body["restart_pending"] = True
    if args.role in API_ROLE:
        body["role"] = API_ROLE[args.role]
    if args.pg_version:
        body["postgres_version"] = args.pg_version
    if args.timeout is not None:
        body["timeout"] = args.timeout
    when = parse_when(args.scheduled)
    if when:
        body["schedule"] = when.isoformat()
    return body


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    snap = ctx.dcs().existing()
    members = select(snap, args.members, args.role)
    body = body_for(args)
    when = f" at {body['schedule']}" if "schedule" in body else ""
    pending = " (only where a restart is pending)" if args.pending else ""
    confirm(f"Restart PostgreSQL on {', '.join(m.name for m in members)}{when}{pending}?",
            args.force, ctx.stdin, ctx.stdout)
    post_each(ctx, members, "/restart", body, "restart", timeout=330.0)
    return 0
