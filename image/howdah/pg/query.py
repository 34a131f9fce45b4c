"""SQL against the local instance: status, roles, slots."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extensions

log = logging.getLogger(__name__)

STATUS_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN 0
            ELSE pg_current_wal_lsn() - '0/0' END,
       COALESCE(pg_last_wal_receive_lsn() - '0/0', 0),
       COALESCE(pg_last_wal_replay_lsn() - '0/0', 0),
       pg_last_xact_replay_timestamp()::text,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
       CASE WHEN pg_is_in_recovery()
            THEN COALESCE((SELECT received_tli FROM pg_stat_get_wal_receiver()),
                          (SELECT timeline_id FROM pg_control_checkpoint()))
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
       END,
       (SELECT system_identifier FROM pg_control_system())::text,
       pg_postmaster_start_time()::text,
       current_setting('server_version_num')::int,
       (SELECT status FROM pg_stat_get_wal_receiver()),
       (SELECT count(*) FROM pg_settings WHERE pending_restart) > 0
"""

REPLICATION_SQL = """
SELECT usename, application_name, host(client_addr), state, sync_state, sync_priority,
       COALESCE(flush_lsn - '0/0', 0)::bigint
  FROM pg_stat_replication
"""


@dataclass(frozen=True)
class Snapshot:
    in_recovery: bool
    wal_position: int  # write LSN on a primary, received on a replica
    received: int
    replayed: int
    replayed_timestamp: str | None
    paused: bool
    timeline: int
    sysid: str
    start_time: str
    server_version: int
    receiver_status: str | None
    pending_restart: bool
    replication: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    # application_name -> flush LSN of each WAL sender's standby (not published)
    flushed: dict[str, int] = field(default_factory=dict)


class LocalDb:
    """One cached superuser connection to the local postmaster."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self._conn: psycopg2.extensions.connection | None = None

    def _connection(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(connect_timeout=3, **self.params)
            self._conn.autocommit = True
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
        self._conn = None

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._connection().cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        except psycopg2.Error:
            self.close()
            raise

    def sync_standby_names(self) -> list[str]:
        """Standbys named in synchronous_standby_names (as we write it)."""
        value = str(self.execute("SHOW synchronous_standby_names")[0][0] or "")
        return parse_ssn(value)

    def set_sync_standby_names(self, value: str, timeout: float = 5.0) -> None:
        """ALTER SYSTEM and reload, then wait until a new session sees the value
        (the reload reaches backends asynchronously); raises if it does not."""
        self.execute("ALTER SYSTEM SET synchronous_standby_names = %s", (value,))
        self.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        while True:
            probe = LocalDb(self.params)
            try:
                seen = str(probe.execute("SHOW synchronous_standby_names")[0][0] or "")
            finally:
                probe.close()
            if seen == value:
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"synchronous_standby_names is still {seen!r} after the reload")
            time.sleep(0.05)

    def checkpoint(self) -> None:
        self.execute("CHECKPOINT")

    def snapshot(self) -> Snapshot | None:
        try:
            row = self.execute(STATUS_SQL)[0]
            repl = self.execute(REPLICATION_SQL) if not row[0] else []
        except psycopg2.Error as exc:
            log.debug("status query failed: %s", exc)
            return None
        in_rec = bool(row[0])
        received, replayed = int(row[2]), int(row[3])
        cols = ("usename", "application_name", "client_addr", "state", "sync_state", "sync_priority")
        return Snapshot(
            in_recovery=in_rec,
            wal_position=max(received, replayed) if in_rec else int(row[1]),
            received=received,
            replayed=replayed,
            replayed_timestamp=row[4],
            paused=bool(row[5]),
            timeline=int(row[6] or 0),
            sysid=str(row[7]),
            start_time=str(row[8]),
            server_version=int(row[9]),
            receiver_status=row[10],
            pending_restart=bool(row[11]),
            replication=tuple(dict(zip(cols, r[:6])) for r in repl),
            flushed={str(r[1]): int(r[6] or 0) for r in repl},
        )

    def physical_slots(self) -> dict[str, int]:
        rows = self.execute(
            "SELECT slot_name, COALESCE(restart_lsn - '0/0', 0) FROM pg_replication_slots"
            " WHERE slot_type = 'physical'"
        )
        return {str(r[0]): int(r[1]) for r in rows}


def parse_ssn(value: str) -> list[str]:
    """Names in 'N (a, "b")', 'FIRST N (...)', 'ANY N (...)' or 'a, b'; '*' names nobody."""
    inner = value
    if "(" in value and value.rstrip().endswith(")"):
        inner = value[value.index("(") + 1:value.rindex(")")]
    names = []
    for part in inner.split(","):
        name = part.strip()
        if name.startswith('"') and name.endswith('"') and len(name) >= 2:
            name = name[1:-1].replace('""', '"')
        if name and name != "*":
            names.append(name)
    return names


def parse_ssn_count(value: str) -> tuple[int, bool]:
    """(k, star) of synchronous_standby_names: how many listed standbys must
    acknowledge a commit ('' -> 0; a bare list -> 1), and whether '*' is listed."""
    text = value.strip()
    if not text:
        return 0, False
    star = "*" in [p.strip() for p in text[text.find("(") + 1:].rstrip(")").split(",")] \
        if "(" in text else "*" in [p.strip() for p in text.split(",")]
    head = text.split("(", 1)[0].split() if "(" in text else []
    if head and head[0].upper() in ("ANY", "FIRST"):
        head = head[1:]
    try:
        k = int(head[0]) if head else 1
    except ValueError:
        k = 1
    return k, star
