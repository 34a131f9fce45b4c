"""Backups to S3: archive throughput, base backup and restore of a ~1 GB database, a restore drill.

    /work/main/.venv/bin/python bench/backup.py [--scale 68] [--out bench/results]

One Howdah node (tests/harness) archiving with pgBackRest to the local S3 server of the tests
(moto behind HAProxy TLS, tests/harness/s3.py), with the pgbackrest.conf the entrypoint renders
from Spilo's variables (gz compression, process-max 2, one archive-push per segment: the
image's defaults).  Steps:

1. the S3 front is stopped, ``pgbench -i -s SCALE`` loads the database (~1 GB at scale 68)
   while its WAL queues in pg_wal (archive_command fails, nothing is lost), then S3 comes back:
   **archive throughput** is the queued segments divided by the time until the archiver
   reports the last one archived (the archiver is woken at once by a WAL switch);
2. **base backup**: ``pgbackrest backup --type=full`` of that database, timed;
3. **restore and drill**: ``howdahctl backup verify --on-primary`` on the node (a single node;
   in production run it on a replica or a spare node): restore point on the primary, restore
   of the backup into a scratch directory, replay, start, row counts and amcheck.  The drill
   reports the restore, replay and check times; its total is the drill's duration.

Results: bench/results/backup-<UTC time>.json, and a markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from harness import LocalCluster  # noqa: E402
from harness.config import SUPERUSER  # noqa: E402
from harness.node import AgentNode  # noqa: E402
from harness.s3 import BUCKET, Rendered, S3Server, python  # noqa: E402

SCOPE = "bkbench"


def log(msg: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {msg}", flush=True)


def wait(what: str, check: Any, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


def archiver(node: AgentNode) -> tuple[int, str, int]:
    row = node.sql("SELECT archived_count, coalesce(last_archived_wal, ''), failed_count FROM pg_stat_archiver")[0]
    return int(row[0]), str(row[1]), int(row[2])


def ready_segments(node: AgentNode) -> int:
    status = node.data_dir / "pg_wal" / "archive_status"
    return sum(1 for p in status.iterdir() if p.name.endswith(".ready") and len(p.name) == 24 + 6)


def archive_and_load(s3: S3Server, node: AgentNode, scale: int) -> dict[str, Any]:
    """pgbench -i while S3 is down, then the time to archive the queued WAL."""
    s3.pause()
    try:
        started = time.monotonic()
        env = {**os.environ, "PGPASSWORD": SUPERUSER[1]}
        bin_dir = Path(str(node.config["postgresql"].get("bin_dir") or "/usr/lib/postgresql/15/bin"))
        subprocess.run([str(bin_dir / "pgbench"), "-i", "-q", "-s", str(scale), "-h", "127.0.0.1",
                        "-p", str(node.pg_port), "-U", SUPERUSER[0], "postgres"], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600)
        load = time.monotonic() - started
        last = str(node.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0])
        node.sql("SELECT pg_switch_wal()")
        queued = wait("the archiver gave up on the segment", lambda: ready_segments(node), 120)
        size = int(node.sql("SELECT pg_database_size('postgres')")[0][0])
        wal_bytes = queued * 16 * 1024 * 1024
        count0 = archiver(node)[0]
    finally:
        s3.resume()
    started = time.monotonic()
    node.sql("CREATE TABLE IF NOT EXISTS wake (v int)")
    node.sql("INSERT INTO wake VALUES (1)")
    node.sql("SELECT pg_switch_wal()")  # notifies the archiver: it retries now, not in 60 s
    wait(f"{last} archived", lambda: archiver(node)[1] >= last and len(archiver(node)[1]) == 24, 3600, 0.2)
    took = time.monotonic() - started
    count, _, failed = archiver(node)
    archived = count - count0
    log(f"loaded {size / 2**30:.2f} GiB in {load:.1f}s; {archived} segments archived in {took:.1f}s "
        f"({archived / took:.2f}/s)")
    return {"db_bytes": size, "load_seconds": round(load, 1), "queued_segments": queued,
            "archived_segments": archived, "archive_seconds": round(took, 1),
            "segments_per_second": round(archived / took, 2),
            "mb_per_second": round(archived * 16 / took, 1), "failed_count": failed, "wal_bytes_queued": wal_bytes}


def base_backup(conf: Rendered, node: AgentNode) -> dict[str, Any]:
    started = time.monotonic()
    conf.run(*conf.cmd(conf.render(node)).split(), "backup", "--type=full")
    took = time.monotonic() - started
    newest = conf.backups()[-1]
    info = newest.get("info") or {}
    repo = info.get("repository") or {}
    log(f"full backup {newest['label']} in {took:.1f}s ({info.get('size', 0) / 2**30:.2f} GiB, "
        f"{repo.get('delta', repo.get('size', 0)) / 2**20:.0f} MiB in the bucket)")
    return {"label": newest["label"], "seconds": round(took, 1), "db_size_bytes": info.get("size"),
            "repo_bytes": repo.get("delta", repo.get("size"))}


def drill(conf: Rendered, node: AgentNode, *extra: str) -> dict[str, Any]:
    status = node.workdir / "drill-status.json"
    done = conf.run(*python().split(), "-m", "howdah.ctl.main", "-c", str(node.config_path), "backup", "verify",
                    "--on-primary", f"--pgbackrest-config={conf.render(node)}", "--format=json", *extra,
                    check=False, env={"HOWDAH_DRILL_STATUS_FILE": str(status)})
    if done.returncode != 0:
        raise RuntimeError(f"the drill failed: {done.stderr.strip()[-600:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"drill passed in {result['seconds']:.1f}s: restore {result['restore_seconds']:.1f}s, replay "
        f"{result['replay_seconds']:.1f}s, checks {result['check_seconds']:.1f}s "
        f"({result['checks']['indexes_checked']} indexes)")
    return result


def run(scale: int) -> dict[str, Any]:
    out: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "scale": scale, "load_average": os.getloadavg()[0],
                           "pgbackrest": subprocess.run(["pgbackrest", "version"], capture_output=True,
                                                        text=True).stdout.strip()}
    with S3Server() as s3:
        s3.create_bucket(BUCKET)
        conf = Rendered(s3, SCOPE)
        try:
            with LocalCluster(1, ttl=30, loop_wait=2, retry_timeout=10, scope=SCOPE, extra=conf.archiving(),
                              root=BENCH / ".clusters") as c:
                node = c.wait_leader(240)
                wait("the primary running", lambda: node.api("/patroni")[1].get("state") == "running", 120)
                log("stanza and a first (empty) full backup")
                conf.keeper(node)
                out["archive"] = archive_and_load(s3, node, scale)
                out["backup"] = base_backup(conf, node)
                out["drill"] = drill(conf, node)
                out["drill_no_amcheck"] = drill(conf, node, "--amcheck-indexes=0")
        finally:
            conf.close()
    return out


def table(r: dict[str, Any]) -> str:
    a, b, d, d0 = r["archive"], r["backup"], r["drill"], r["drill_no_amcheck"]
    rows = [("database (pgbench -i -s %d)" % r["scale"], f"{a['db_bytes'] / 2**30:.2f} GiB"),
            ("archive throughput", f"{a['segments_per_second']:.2f} segments/s ({a['mb_per_second']:.0f} MB/s of WAL; "
                                   f"{a['archived_segments']} queued segments in {a['archive_seconds']:.1f} s)"),
            ("base backup (full)", f"{b['seconds']:.1f} s ({(b['repo_bytes'] or 0) / 2**20:.0f} MiB in the bucket)"),
            ("restore (pgbackrest restore, in the drill)", f"{d['restore_seconds']:.1f} s"),
            ("replay to the restore point + start", f"{d['replay_seconds']:.1f} s"),
            ("checks (row counts, amcheck on %d indexes)" % d["checks"]["indexes_checked"],
             f"{d['check_seconds']:.1f} s"),
            ("restore drill, total", f"{d['seconds']:.1f} s"),
            ("restore drill without amcheck, total", f"{d0['seconds']:.1f} s")]
    return "| step | result |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--scale", type=int, default=68, help="pgbench scale (68: about 1 GB)")
    p.add_argument("--out", default=str(BENCH / "results"))
    args = p.parse_args()
    result = run(args.scale)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"backup-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(table(result))
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
