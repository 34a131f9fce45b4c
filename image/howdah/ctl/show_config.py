"""howdahctl show-config: the cluster's dynamic configuration as YAML."""
from __future__ import annotations

import argparse

from .context import Ctx
from .edit_config import dump


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("show-config", help="print the cluster's dynamic configuration")
    p.set_defaults(run=run)


def run(ctx: Ctx, args: argparse.Namespace) -> int:
    snap = ctx.dcs().existing()
    ctx.say(dump(snap.view.config).rstrip("\n") or "{}")
    return 0
