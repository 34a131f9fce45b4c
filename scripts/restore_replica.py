#!/usr/bin/python3
"""howdah-restore-replica: a WAL-E style replica method backed by pgBackRest.

Called by the agent as a create_replica_method (``--scope --role --datadir --connstring`` and
the method's own keys).  It restores the newest backup of the stanza only when that backup is
close enough to the cluster: if the leader's WAL position is more than ``threshold_megabytes``
past the backup, or more than ``threshold_backup_size_percentage`` percent of the backup's
size, replaying the archive would take longer than a fresh copy, so it declines (exit 1) and
the next method (basebackup) takes over.  With no leader (empty --connstring, ``no_master``)
it restores and lets the archive bring the replica as far as it goes.

WAL-E itself is not shipped (nor packaged by Debian): pgBackRest's ``info --output=json`` is
the source of the backup's stop LSN and size.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

MiB = 1024 * 1024


def log(message: str) -> None:
    print(f"restore-replica: {message}", flush=True)


def parse_lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def newest_backup(info: list[dict[str, Any]], stanza: str) -> dict[str, Any] | None:
    for entry in info:
        if entry.get("name") == stanza:
            backups = [b for b in entry.get("backup") or [] if not b.get("error")]
            return max(backups, key=lambda b: b["timestamp"]["stop"]) if backups else None
    return None


def decide(backup: dict[str, Any] | None, leader_lsn: int | None, threshold_megabytes: int,
           threshold_percentage: int) -> tuple[bool, str]:
    """(restore?, why) - pure, so the thresholds are testable without a repository."""
    if backup is None:
        return False, "no backup in the repository"
    stop = parse_lsn(backup["lsn"]["stop"])
    if leader_lsn is None:
        return True, f"no leader to compare with: restoring backup {backup['label']}"
    behind = max(0, leader_lsn - stop)
    size = int(backup.get("info", {}).get("size") or 0)
    if behind > threshold_megabytes * MiB:
        return False, (f"backup {backup['label']} is {behind // MiB} MB of WAL behind the leader "
                       f"(threshold_megabytes {threshold_megabytes})")
    if size and behind * 100 > size * threshold_percentage:
        return False, (f"backup {backup['label']} is {behind // MiB} MB of WAL behind the leader, more than "
                       f"{threshold_percentage}% of its {size // MiB} MB (threshold_backup_size_percentage)")
    return True, f"backup {backup['label']} is {behind // MiB} MB of WAL behind the leader: restoring it"


def leader_lsn(connstring: str) -> int | None:
    if not connstring:
        return None
    import psycopg2

    try:
        conn = psycopg2.connect(connstring, connect_timeout=5)
    except psycopg2.Error as exc:
        log(f"cannot reach the leader ({str(exc).strip()}): not comparing")
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
                        "ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint")
            row = cur.fetchone()
            return int(row[0]) if row and row[0] is not None else None
    finally:
        conn.close()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="howdah-restore-replica")
    p.add_argument("--scope", default="")
    p.add_argument("--role", default="replica")
    p.add_argument("--datadir", required=True)
    p.add_argument("--connstring", default="")
    p.add_argument("--config", default="/run/howdah/pgbackrest.conf")
    p.add_argument("--stanza", default="")
    p.add_argument("--threshold-megabytes", "--threshold_megabytes", type=int, default=10240)
    p.add_argument("--threshold-backup-size-percentage", "--threshold_backup_size_percentage",
                   type=int, default=30)
    args, unknown = p.parse_known_args(argv)
    if unknown:
        log(f"ignoring options {' '.join(unknown)}")
    args.stanza = args.stanza or args.scope
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    base = ["pgbackrest", f"--config={args.config}", f"--stanza={args.stanza}"]
    info = subprocess.run(base + ["info", "--output=json"], stdout=subprocess.PIPE, text=True)
    if info.returncode != 0:
        log(f"pgbackrest info failed (exit {info.returncode}): declining")
        return 1
    backup = newest_backup(json.loads(info.stdout or "[]"), args.stanza)
    ok, why = decide(backup, leader_lsn(args.connstring), args.threshold_megabytes,
                     args.threshold_backup_size_percentage)
    log(why)
    if not ok or backup is None:
        log("declining: the next replica method takes over")
        return 1
    restore = base + [f"--pg1-path={args.datadir}", f"--set={backup['label']}", "--delta", "--type=standby",
                      "restore"]
    log("running " + " ".join(restore))
    code = subprocess.run(restore).returncode
    log("restore finished" if code == 0 else f"restore failed (exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
