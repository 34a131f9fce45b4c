"""howdahctl query: run SQL on the leader (or a member) as the configured superuser."""
from __future__ import annotations

import argparse
import json
from typing import Any, Sequence
from urllib.parse import urlsplit

import psycopg2

from howdah.core.models import Member

from .context import Ctx
from .dsn import pick
from .errors import CtlError
from .targets import ROLES
from .ui import render_table


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("query", help="run SQL on the leader or a member")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("-c", "--command", help="the SQL to run")
    what.add_argument("-f", "--file", help="a file of SQL to run ('-' for stdin)")
    p.add_argument("-m", "--member", help="run on this member")
    p.add_argument("-r", "--role", choices=ROLES, default="leader",
                   help="run on a member with this role (default: leader)")
    p.add_argument("-U", "--username", help="default: the superuser from the config")
    p.add_argument("-d", "--dbname", default="postgres")
    p.add_argument("--format", choices=("pretty", "tsv", "json"), default="pretty")
    p.set_defaults(run=run)


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(columns, r)) for r in rows], default=str)
    if fmt == "tsv":
        cells = [columns, *[["" if c is None else str(c) for c in r] for r in rows]]
        return "\n".join("\t".join(row) for row in cells)
    return render_table(columns, rows)


def execute(ctx: Ctx, member: Member, sql: str, args: argparse.Namespace) -> str:
    su = ctx.config.superuser
    url = urlsplit(member.conn_url)
    kw: dict[str, Any] = {"host": url.hostname, "port": url.port or 5432, "dbname": args.dbname,
                          "user": args.username or su.get("username") or "postgres",
                          "connect_timeout": 5, "application_name": "howdahctl"}
    if su.get("password") and not args.username:
        kw["password"] = str(su["password"])
    try:
        conn = psycopg2.connect(**kw)
    except psycopg2.Error as exc:
        first = (str(exc).strip().splitlines() or ["connection failed"])[0]
        raise CtlError(f"cannot connect to {member.name} ({url.hostname}:{kw['port']}): {first}") \
            from None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            if cur.description is None:
                return cur.statusmessage or "OK"
            columns = [d[0] for d in cur.description]
            return render_rows(columns, cur.fetchall(), args.format)
    except psycopg2.Error as exc:
        first = (str(exc).strip().splitlines() or ["query failed"])[0]
        raise CtlError(f"{member.name}: {first}") from None
    finally:
        conn.close()


def read_sql(args: argparse.Namespace) -> str:
    if args.command is not None:
        return str(args.command)
    try:
        with open(0 if args.file == "-" else args.file) as fh:
            return fh.read()
    except OSError as exc:
        raise CtlError(f"cannot read {args.file}: {exc.strerror}") from None


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    sql = read_sql(args)
    if not sql.strip():
        raise CtlError("no SQL given")
    member = pick(ctx, args.member, args.role)
    ctx.say(execute(ctx, member, sql, args))
    return 0
