"""howdahctl dsn: the libpq connection string of the leader or of a member."""
from __future__ import annotations

import argparse
from urllib.parse import unquote, urlsplit

from howdah.core.models import Member

from .context import Ctx
from .errors import CtlError
from .targets import ROLES, select


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("dsn", help="libpq DSN of the leader (or of MEMBER)")
    p.add_argument("member", nargs="?", metavar="MEMBER")
    p.add_argument("--role", choices=ROLES, default="leader",
                   help="pick a member with this role when MEMBER is not given")
    p.set_defaults(run=run)


def dsn_of(member: Member) -> str:
    parts = urlsplit(member.conn_url)
    if not parts.hostname:
        raise CtlError(f"{member.name} publishes no conn_url in the DCS")
    fields = [f"host={parts.hostname}", f"port={parts.port or 5432}"]
    db = unquote(parts.path.lstrip("/"))
    if db and db != "postgres":
        fields.append(f"dbname={db}")
    return " ".join(fields)


def pick(ctx: Ctx, name: str | None, role: str) -> Member:
    snap = ctx.dcs().existing()
    if name:
        return snap.member(name)
    running = [m for m in select(snap, [], role) if m.state == "running"] \
        if snap.view.members else []
    if not running:
        raise CtlError(f"no running member with role {role!r} in cluster {ctx.scope!r}")
    return running[0]


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    ctx.say(dsn_of(pick(ctx, args.member, args.role)))
    return 0
