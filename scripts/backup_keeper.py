#!/usr/bin/python3
"""howdah-backup-keeper: keep a pgBackRest stanza and a first full backup for this cluster.

Runs under supervisord on every node (archiving on).  Every --interval seconds it asks the agent
(GET /patroni) whether this node is a running primary; if so it makes sure the stanza exists
(``stanza-create``, which is idempotent) and, when the stanza holds no backup yet, takes a
full one.  Replicas and stopped nodes do nothing, so after a failover the new primary takes
over the duty; a backup already in the repository is never repeated.  --once checks once.
"""
from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any


# pgBackRest `info` status codes that mean the stanza must still be created
MISSING_STANZA = {1, 3}


def log(message: str) -> None:
    print(f"backup-keeper: {message}", flush=True)


def is_primary(args: argparse.Namespace) -> bool:
    """The agent says so: role primary and state running (not while it still bootstraps,
    so post_bootstrap and the keeper never race on stanza-create)."""
    context = ssl._create_unverified_context() if args.api_url.startswith("https") else None
    try:
        with urllib.request.urlopen(args.api_url, timeout=5, context=context) as response:
            status = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:  # 503 still carries the status JSON
        status = json.loads(error.read() or b"{}")
    except (OSError, ValueError):
        return False
    return bool(status.get("role") == "primary" and status.get("state") == "running")


def pgbackrest(args: argparse.Namespace, *command: str) -> subprocess.CompletedProcess[str]:
    argv = ["pgbackrest", f"--config={args.config}", f"--stanza={args.stanza}", *command]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stanza_info(args: argparse.Namespace) -> dict[str, Any] | None:
    done = pgbackrest(args, "info", "--output=json")
    if done.returncode != 0:
        log(f"pgbackrest info failed: {done.stdout.strip()[-500:]}")
        return None
    for stanza in json.loads(done.stdout or "[]"):
        if stanza.get("name") == args.stanza:
            return dict(stanza)
    return {"status": {"code": 1}, "backup": []}


def check(args: argparse.Namespace) -> bool:
    """One round; True when the stanza holds a backup (or we are not the primary)."""
    if not is_primary(args):
        return True
    info = stanza_info(args)
    if info is None:
        return False
    if int((info.get("status") or {}).get("code", 0)) in MISSING_STANZA:
        log(f"creating stanza {args.stanza}")
        done = pgbackrest(args, "stanza-create")
        if done.returncode != 0:
            log(f"stanza-create failed: {done.stdout.strip()[-500:]}")
            return False
        info = stanza_info(args) or {}
    if info.get("backup"):
        return True
    log(f"stanza {args.stanza} has no backup: taking a full backup")
    started = time.monotonic()
    done = pgbackrest(args, "backup", "--type=full")
    if done.returncode != 0:
        log(f"full backup failed (exit {done.returncode}): {done.stdout.strip()[-500:]}")
        return False
    log(f"full backup of {args.stanza} done in {time.monotonic() - started:.1f}s")
    return True


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="howdah-backup-keeper", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--stanza", required=True)
    p.add_argument("--api-url", default="http://127.0.0.1:8008/patroni", help="the agent's GET /patroni")
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--once", action="store_true", help="check once; exit 1 if the backup is missing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.once:
        return 0 if check(args) else 1
    while True:
        try:
            check(args)
        except Exception as exc:  # noqa: BLE001 - keep the keeper alive; say what went wrong
            log(f"check failed: {exc!r}")
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
