#!/usr/bin/python3
"""howdah-clone-pgbackrest: bootstrap a new cluster from another cluster's pgBackRest backup.

Custom bootstrap method (``clone_with_pgbackrest``, also behind CLONE_WITH_WALE): the agent calls
it with ``--scope`` and ``--datadir``; the image adds ``--config``, ``--stanza`` (CLONE_SCOPE),
``--target-time`` (CLONE_TARGET_TIME) and, for a numeric CLONE_TARGET_TIMELINE,
``--target-timeline``.  It restores the newest backup that finished before the target time (the
newest of all without one; with a timeline, one taken on it or an earlier timeline) with
``--type=none``: pgBackRest writes no recovery target, the agent writes the method's
``recovery_conf`` (restore_command, recovery_target_time, recovery_target_action: promote) and
waits for the promotion.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from typing import Any


def log(message: str) -> None:
    print(f"clone-pgbackrest: {message}", flush=True)


def timeline_of(backup: dict[str, Any]) -> int:
    """The timeline a backup was taken on (the first 8 hex digits of its start WAL)."""
    start = str((backup.get("archive") or {}).get("start") or "")
    try:
        return int(start[:8], 16)
    except ValueError:
        return 0


def choose_backup(info: list[dict[str, Any]], stanza: str, target: datetime | None,
                  timeline: int | None = None) -> dict[str, Any] | None:
    """The newest good backup of `stanza` that stopped before `target` (any, without one),
    taken on `timeline` or an earlier one when a timeline is the target."""
    for entry in info:
        if entry.get("name") != stanza:
            continue
        backups = [b for b in entry.get("backup") or [] if not b.get("error")]
        if target is not None:
            backups = [b for b in backups if b["timestamp"]["stop"] < target.timestamp()]
        if timeline is not None:
            backups = [b for b in backups if 0 < timeline_of(b) <= timeline]
        return max(backups, key=lambda b: b["timestamp"]["stop"]) if backups else None
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="howdah-clone-pgbackrest")
    p.add_argument("--scope", default="")
    p.add_argument("--datadir", required=True)
    p.add_argument("--config", default="/run/howdah/pgbackrest.conf")
    p.add_argument("--stanza", required=True, help="the source cluster's stanza (CLONE_SCOPE)")
    p.add_argument("--target-time", default="")
    p.add_argument("--target-timeline", type=int, default=None, help="a numeric recovery_target_timeline")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    target = datetime.fromisoformat(args.target_time) if args.target_time else None
    if target is not None and target.tzinfo is None:
        log(f"--target-time {args.target_time!r} has no time zone")
        return 2
    base = ["pgbackrest", f"--config={args.config}", f"--stanza={args.stanza}"]
    info = subprocess.run(base + ["info", "--output=json"], stdout=subprocess.PIPE, text=True)
    if info.returncode != 0:
        log(f"pgbackrest info failed (exit {info.returncode})")
        return 1
    backup = choose_backup(json.loads(info.stdout or "[]"), args.stanza, target, args.target_timeline)
    if backup is None:
        log(f"stanza {args.stanza} has no backup" + (f" finished before {target}" if target else "")
            + (f" on timeline {args.target_timeline} or earlier" if args.target_timeline is not None else ""))
        return 1
    stopped = datetime.fromtimestamp(backup["timestamp"]["stop"]).astimezone().isoformat(sep=" ")
    log(f"restoring backup {backup['label']} of {args.stanza} (finished {stopped}) into {args.datadir}; "
        + (f"recovery will stop at {target}" if target else "recovery will replay the whole archive"))
    started = time.monotonic()
    code = subprocess.run(base + [f"--pg1-path={args.datadir}", f"--set={backup['label']}", "--type=none",
                                  "--log-level-console=info", "restore"]).returncode
    if code != 0:
        log(f"restore failed (exit {code})")
        return code
    log(f"restore finished in {time.monotonic() - started:.1f}s; PostgreSQL replays the archive next")
    return 0


if __name__ == "__main__":
    sys.exit(main())
