"""howdahctl history: the cluster's timeline switches, oldest first."""
from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

from .context import Ctx
from .ui import render_table

HEADERS = ("TL", "LSN", "Reason", "Timestamp", "New Leader")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("history", help="show the timeline history")
    p.add_argument("-f", "--format", choices=("pretty", "json"), default="pretty")
    p.set_defaults(run=run)


def history_rows(history: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Entries are [tl, lsn, reason] or [tl, lsn, reason, timestamp, new_leader]."""
    return [[*entry[:5], *[""] * (5 - len(entry[:5]))] for entry in history]


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    snap = ctx.dcs().existing()
    rows = history_rows(snap.view.history)
    if args.format == "json":
        ctx.say(json.dumps([dict(zip(("timeline", "lsn", "reason", "timestamp", "new_leader"),
                                     r)) for r in rows]))
    else:
        ctx.say(render_table(HEADERS, rows, f"Cluster: {ctx.scope}"))
    return 0
