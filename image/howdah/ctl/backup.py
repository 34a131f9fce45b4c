"""howdahctl backup verify: a restore drill of the newest backup (howdah.backup.drill).

Run it on a replica or a spare node with the repository's pgBackRest config: the backup is
restored into a scratch directory (never the data directory), replayed to a restore point
written on the leader, started on a scratch port and checked; the result is recorded in the
repository (annotations on the backup set) and in the local drill status file (/metrics).
Exit 0 when the drill passed, 1 with an ERROR line when the backup could not be restored.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from howdah.backup import drill, record

from .context import Ctx
from .errors import CtlError


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("backup", help="backups in the repository: restore drills")
    verbs = p.add_subparsers(dest="backup_command", metavar="VERB", parser_class=type(p))
    v = verbs.add_parser("verify", help="restore the newest backup into a scratch directory and check it")
    v.add_argument("--pgbackrest-config", metavar="FILE",
                   help="pgBackRest config (default: pgbackrest.conf in $HOWDAH_RUN_DIR or /run/howdah)")
    v.add_argument("--stanza", help="default: the cluster's scope")
    v.add_argument("--set", dest="backup_set", default="", metavar="LABEL", help="default: the newest backup")
    v.add_argument("--scratch-dir", metavar="DIR",
                   help="where the scratch copy goes (default: beside the data directory)")
    v.add_argument("--bin-dir", metavar="DIR", help="PostgreSQL binaries (default: the backup's version)")
    v.add_argument("--no-primary", action="store_true",
                   help="do not touch the leader: replay to the end of the archive, no row counts")
    v.add_argument("--on-primary", action="store_true", help="allow the drill on the leader's own node")
    v.add_argument("--scheduled", action="store_true",
                   help="for a schedule run on every node: drill only on the first running replica (by name), "
                        "elsewhere say so and exit 0")
    v.add_argument("-d", "--dbname", default="postgres", help="database of the row counts and amcheck")
    v.add_argument("--tables", default="", help="comma-separated tables to count (default: a sample)")
    v.add_argument("--sample", type=_count, default=3, help="tables sampled when --tables is not given")
    v.add_argument("--amcheck-indexes", type=_count, default=20, help="btree indexes checked (0: no amcheck)")
    v.add_argument("--archive-timeout", type=_seconds, default=300.0,
                   help="seconds to wait for the restore point's WAL to be archived")
    v.add_argument("--status-file", metavar="FILE", help="default: $HOWDAH_DRILL_STATUS_FILE or drill-status.json "
                   "in the run directory")
    v.add_argument("--no-annotate", action="store_true", help="do not record the result in the repository")
    v.add_argument("--format", choices=("text", "json"), default="text")
    v.set_defaults(run=run_verify)
    p.set_defaults(run=lambda ctx, args: _no_verb())


def _no_verb() -> int:
    raise CtlError("howdahctl backup: a verb is required: verify (see --help)", 2)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def pgbackrest_config(given: str | None) -> str:
    path = given or str(Path(os.environ.get("HOWDAH_RUN_DIR") or record.IMAGE_RUN_DIR) / "pgbackrest.conf")
    if not os.path.isfile(path):
        raise CtlError(f"--pgbackrest-config: {path} does not exist (archiving off? give the repository's "
                       "pgBackRest config file)")
    return path


def primary_dsn(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any] | None:
    if args.no_primary:
        return None
    try:
        snap = ctx.dcs().existing()
    except CtlError as exc:
        raise CtlError(f"{exc} (or use --no-primary to replay to the end of the archive)") from None
    leader = snap.leader_name
    if not leader:
        raise CtlError(f"cluster {ctx.scope!r} has no leader to mark (use --no-primary)")
    me = str(ctx.config.raw.get("name") or "")
    if me == leader and not args.on_primary:
        raise CtlError(f"this node ({me}) is the leader: run the drill on a replica or a spare node "
                       "(or pass --on-primary)")
    url = urlsplit(snap.member(leader).conn_url)
    if not url.hostname:
        raise CtlError(f"the leader {leader} publishes no conn_url in the DCS")
    su = ctx.config.superuser
    kw: dict[str, Any] = {"host": url.hostname, "port": url.port or 5432, "dbname": args.dbname,
                          "user": su.get("username") or "postgres"}
    if su.get("password"):
        kw["password"] = str(su["password"])
    return kw


def chosen(ctx: Ctx) -> str:
    """For --scheduled: '' when this node runs the drill, else why it does not."""
    snap = ctx.dcs().existing()
    me = str(ctx.config.raw.get("name") or "")
    replicas = sorted(m.name for m in snap.view.members if m.name != snap.leader_name and m.state == "running")
    if not replicas:
        return f"cluster {ctx.scope!r} has no running replica to run the scheduled drill on"
    if replicas[0] != me:
        return f"the scheduled drill runs on {replicas[0]} (the first running replica), not on {me or 'this node'}"
    return ""


def plan_of(ctx: Ctx, args: argparse.Namespace) -> drill.Plan:
    pg = ctx.config.section("postgresql")
    data_dir = Path(str(pg["data_dir"])) if pg.get("data_dir") else None
    parent = Path(args.scratch_dir) if args.scratch_dir else (
        data_dir.resolve().parent if data_dir is not None else Path(tempfile.gettempdir()))
    stanza = args.stanza or ctx.scope
    if not stanza:
        raise CtlError("--stanza: no scope in the config: give the pgBackRest stanza")
    tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
    status = Path(args.status_file) if args.status_file else record.status_path()
    return drill.Plan(
        pgbackrest=("pgbackrest", f"--config={pgbackrest_config(args.pgbackrest_config)}", f"--stanza={stanza}"),
        scratch_parent=parent, data_dir=data_dir, bin_dir=Path(args.bin_dir) if args.bin_dir else None,
        primary=primary_dsn(ctx, args), backup_set=args.backup_set, dbname=args.dbname, tables=tables,
        sample=args.sample, amcheck_indexes=args.amcheck_indexes, archive_timeout=args.archive_timeout,
        node=str(ctx.config.raw.get("name") or ""), status_file=status, annotate=not args.no_annotate)


def summary(result: dict[str, Any]) -> str:
    checks = result.get("checks") or {}
    counts = checks.get("row_counts") or {}
    parts = [f"restore {result.get('restore_seconds', 0):.1f}s", f"replay {result.get('replay_seconds', 0):.1f}s",
             f"checks {result.get('check_seconds', 0):.1f}s"]
    detail = [f"{checks.get('databases', 0)} database(s) open",
              f"{len(counts)} table(s) with the primary's row counts" if counts else "row counts not compared",
              f"amcheck: {checks.get('indexes_checked', 0)} index(es), {checks.get('heaps_checked', 0)} heap(s)"
              if checks.get("amcheck") == "ran" else f"amcheck {checks.get('amcheck', 'not run')}"]
    return (f"backup {result.get('backup')} passed its restore drill in {result['seconds']:.1f}s "
            f"({', '.join(parts)}): {'; '.join(detail)}")


def run_verify(ctx: Ctx, args: argparse.Namespace) -> int:
    if args.scheduled:
        skip = chosen(ctx)
        if skip:
            ctx.say(f"INFO: {skip}")
            return 0
    plan = plan_of(ctx, args)
    def say(line: str) -> None:
        if args.format == "text":
            ctx.say(line)
        else:
            ctx.stderr.write(line + "\n")

    result = drill.run(plan, say)
    if args.format == "json":
        ctx.say(json.dumps(result, sort_keys=True))
    if result["result"] != "passed":
        raise CtlError(f"ERROR: backup {result.get('backup') or '(none)'} failed its restore drill after "
                       f"{result['seconds']:.1f}s: {result.get('error')}")
    if args.format == "text":
        ctx.say(summary(result))
    return 0
