"""Replica creation (pg_basebackup) and pg_rewind."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from howdah.pg.conf import Credentials, conninfo, split_conn_url
from howdah.pg.ctl import PgPaths, controldata
from howdah.pg.methods import long_options
from howdah.pg.params import server_major
from howdah.pg.proc import run_logged

log = logging.getLogger(__name__)


def basebackup_options(spec: Any) -> list[str]:
    """`postgresql.basebackup` as a map or a list of flags / one-key maps."""
    return long_options(spec, "postgresql.basebackup", allow_map=True)


def clean_data_dir(data_dir: Path) -> None:
    """Empty the data directory, keeping the directory itself (it may be a mount)."""
    if not data_dir.exists():
        return
    for child in data_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def move_aside(data_dir: Path, suffix: str) -> str | None:
    """Rename data_dir to <data_dir>.<suffix>, replacing an older one; where it
    cannot be renamed (a mount point), empty it instead.  Returns the new path."""
    if not data_dir.exists():
        return None
    target = data_dir.with_name(f"{data_dir.name}.{suffix}")
    try:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.rename(data_dir, target)
        log.warning("moved the data directory %s to %s", data_dir, target)
        return str(target)
    except OSError as exc:
        log.warning("cannot move %s to %s (%s): emptying it instead", data_dir, target,
                    exc.strerror)
        clean_data_dir(data_dir)
        return None


def basebackup(paths: PgPaths, source_url: str, creds: Credentials, pgpass: Path,
               options: list[str], app_name: str) -> bool:
    host, port = split_conn_url(source_url)
    # not the member's own application_name: a base backup's WAL stream must
    # not pass for the member's streaming replication in pg_stat_replication
    dsn = conninfo({"host": host, "port": port, "user": creds.username,
                    "application_name": f"{app_name}_basebackup", "dbname": "postgres",
                    **creds.tls_options(server_major(paths.bin_dir))})
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.data_dir, 0o700)
    args = [paths.bin("pg_basebackup"), "-D", str(paths.data_dir), "-d", dsn, "-X", "stream",
            "-c", "fast", "--progress", "--verbose", *options]
    code = run_logged(args, "basebackup", env={"PGPASSFILE": str(pgpass)}, timeout=86400)
    if code != 0:
        clean_data_dir(paths.data_dir)
        return False
    return True


def crash_recover(paths: PgPaths) -> bool:
    """Bring a crashed primary to a clean shutdown so pg_rewind accepts it."""
    if controldata(paths).get("Database cluster state") not in ("in production", "in crash recovery"):
        return True
    args = [paths.bin("postgres"), "--single", "-D", str(paths.data_dir),
            "-c", "archive_mode=off", "-c", "hot_standby=off", "template1"]
    log.info("rewind: running single-user crash recovery before pg_rewind")
    import subprocess
    try:
        res = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("rewind: crash recovery failed: %s", exc)
        return False
    if res.returncode != 0:
        log.error("rewind: crash recovery failed: %s", res.stderr.strip()[-500:])
    return res.returncode == 0


def rewind(paths: PgPaths, source_url: str, creds: Credentials, pgpass: Path) -> bool:
    if not crash_recover(paths):
        return False
    host, port = split_conn_url(source_url)
    dsn = conninfo({"host": host, "port": port, "user": creds.username, "dbname": "postgres",
                    **creds.tls_options(server_major(paths.bin_dir))})
    args = [paths.bin("pg_rewind"), "--target-pgdata", str(paths.data_dir),
            "--source-server", dsn, "--progress"]
    return run_logged(args, "rewind", env={"PGPASSFILE": str(pgpass)}, timeout=86400) == 0
