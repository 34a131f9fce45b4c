"""Has this data directory left the leader's timeline?  Read from the local
control file (a stopped server) or the local server's IDENTIFY_SYSTEM and
replay position (a running replica), and the leader's IDENTIFY_SYSTEM /
TIMELINE_HISTORY (physical replication connections, the replication user's
credentials)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras

from howdah.core.timeline import diverged, parse_history_file, parse_lsn
from howdah.pg import ctl
from howdah.pg.ctl import PgPaths
from howdah.pg.conf import Credentials, conninfo, split_conn_url


log = logging.getLogger(__name__)


def local_position(paths: PgPaths) -> tuple[bool, int, int] | None:
    """(in recovery, timeline, LSN) of a stopped data directory, or None when
    its state tells nothing (a crash: the WAL end is unknown until replayed)."""
    cd = ctl.controldata(paths)
    state = cd.get("Database cluster state", "")
    try:
        if state in ("shut down in recovery", "in archive recovery"):
            lsn = cd.get("Minimum recovery ending location", "0/0")
            tli = int(cd.get("Min recovery ending loc's timeline", "0"))
            if lsn != "0/0" and tli != 0:
                return True, tli, parse_lsn(lsn)
            state = "shut down"  # it was a primary when it stopped
        if state == "shut down":
            return (False, int(cd.get("Latest checkpoint's TimeLineID", "0")),
                    parse_lsn(cd.get("Latest checkpoint location", "0/0")))
    except ValueError:
        log.warning("cannot read the timeline and position from pg_controldata")
    return None


def _replication_conn(url: str, creds: Credentials, pgpass: Path, timeout: int) -> Any:
    """A physical replication connection to the server at `url` as `creds`.  The
    password goes with the connection (the pgpass file names only the servers an
    upstream, clone or rewind connection goes to, and a fresh agent has none yet:
    the check before the first start failed for want of it)."""
    host, port = split_conn_url(url)
    dsn = conninfo({"host": host, "port": port, "user": creds.username, "dbname": "postgres",
                    "password": creds.password, "connect_timeout": str(timeout),
                    "passfile": str(pgpass), "application_name": "howdah_timeline_check",
                    **creds.tls_options()})
    return psycopg2.connect(dsn, connection_factory=psycopg2.extras.PhysicalReplicationConnection)


def leader_timeline(url: str, creds: Credentials, pgpass: Path,
                    timeout: int = 3) -> tuple[int, str]:
    """The leader's current timeline and its history file's text."""
    conn = _replication_conn(url, creds, pgpass, timeout)
    try:
        cur = conn.cursor()
        cur.execute("IDENTIFY_SYSTEM")
        row = cur.fetchone()
        tli = int(row[1]) if row else 0
        history = ""
        if tli > 1:
            cur.execute(f"TIMELINE_HISTORY {tli}")
            hrow = cur.fetchone()
            if hrow:
                raw = hrow[1]
                history = raw if isinstance(raw, str) else bytes(raw).decode()
        return tli, history
    finally:
        conn.close()


def running_timeline(url: str, creds: Credentials, pgpass: Path, timeout: int = 3) -> int | None:
    """The timeline the running local replica replays (IDENTIFY_SYSTEM on a
    standby answers with it), or None when it does not answer."""
    try:
        conn = _replication_conn(url, creds, pgpass, timeout)
    except (psycopg2.Error, OSError) as exc:
        log.warning("timeline check: cannot ask the local server: %s", str(exc).strip())
        return None
    try:
        cur = conn.cursor()
        cur.execute("IDENTIFY_SYSTEM")
        row = cur.fetchone()
        return int(row[1]) if row else None
    except (psycopg2.Error, ValueError) as exc:
        log.warning("timeline check: cannot read the local timeline: %s", str(exc).strip())
        return None
    finally:
        conn.close()


def check(paths: PgPaths, url: str, creds: Credentials, pgpass: Path,
          running: tuple[str, int] | None = None) -> bool | None:
    """True: diverged; False: the leader's timeline contains our data; None:
    unknown (to be asked again).  `running`: (URL, replay LSN) of the local
    server running as a replica, whose timeline is asked of it; else the
    position is read from the control file of the stopped server."""
    local: tuple[bool, int, int] | None
    if running is None:
        if ctl.is_running(paths):
            return None  # a postmaster starting up: its control file is not final
        local = local_position(paths)
    else:
        mine = running_timeline(running[0], creds, pgpass)
        local = None if not mine else (True, mine, running[1])
    if local is None:
        return None
    try:
        tli, history = leader_timeline(url, creds, pgpass)
    except (psycopg2.Error, OSError, ValueError) as exc:
        log.warning("timeline check against %s failed: %s", url, str(exc).strip())
        return None
    in_recovery, local_tli, local_lsn = local
    out = diverged(in_recovery, local_tli, local_lsn, tli, parse_history_file(history))
    log.info("local timeline %s at %X/%X (%s), leader's timeline %s: %s", local_tli,
             local_lsn >> 32, local_lsn & 0xFFFFFFFF,
             "replayed" if running else ("minimum recovery point" if in_recovery
                                          else "shutdown checkpoint"),
             tli, "diverged" if out else "not diverged")
    return out
