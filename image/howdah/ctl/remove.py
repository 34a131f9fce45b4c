"""howdahctl remove: delete every key of a cluster from the DCS, after typed confirmations."""
from __future__ import annotations

import argparse

from .context import Ctx
from .dcs import Snapshot
from .errors import CtlError
from .listing import render
from .ui import typed_confirm

AWARE = "Yes I am aware"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("remove", help="wipe a cluster's keys from the DCS")
    p.add_argument("scope", metavar="CLUSTER", help="the cluster (scope) to remove")
    p.add_argument("--force", action="store_true", help="skip the typed confirmations")
    p.set_defaults(run=run)


def confirm_removal(ctx: Ctx, snap: Snapshot) -> None:
    """Type the cluster name, then the awareness phrase, then the leader's name if any."""
    typed_confirm("Type the name of the cluster to remove", snap.scope, ctx.stdin, ctx.stdout)
    typed_confirm(f"Every key of {snap.scope!r} will be deleted from the DCS. "
                  f"Type \"{AWARE}\"", AWARE, ctx.stdin, ctx.stdout)
    member = snap.view.leader_member
    if snap.leader_name and member is not None and member.state == "running":
        typed_confirm(f"{snap.leader_name} holds the leader lock and is running. "
                      "Type its name to go on", snap.leader_name, ctx.stdin, ctx.stdout)


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    dcs = ctx.dcs(args.scope)
    snap = dcs.existing()
    ctx.say(render(snap))
    if not args.force:
        confirm_removal(ctx, snap)
    dcs.wipe()
    ctx.say(f"cluster {args.scope!r} removed from the DCS")
    if snap.view.members:
        ctx.stderr.write("note: running agents will register again on their next cycle; "
                         "stop them first for a clean removal\n")
    return 0
