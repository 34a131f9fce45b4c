"""SQL against the local instance: status, roles, slots."""
from __future__ import annotations

import logging
import math
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg2
import psycopg2.extensions

from howdah.pg import pending

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
       (SELECT count(*) FROM pg_settings WHERE pending_restart) > 0,
       """ + pending.ROWS_SQL + """
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
    # name -> {old_value, new_value} of what waits for a restart, as Patroni publishes it
    pending_restart_reason: dict[str, dict[str, str]] = field(default_factory=dict)
    replication: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    # application_name -> flush LSN of each WAL sender's standby (not published)
    flushed: dict[str, int] = field(default_factory=dict)


class Timeout(psycopg2.OperationalError):
    """The server did not answer within the time the caller's lease left."""


_bound = threading.local()
CONNECT_TIMEOUT = 3.0  # a connection attempt without a bound (libpq's connect_timeout was 3)
TIMEOUT_FLOOR = 0.5  # a call made at or past the bound still gets this long


def bound_thread(budget: Callable[[], float | None] | None) -> None:
    """From now on every LocalDb call on this thread may take at most budget()
    seconds (None: unbounded), asked anew at each call.  The HA loop sets it
    from the time its lease leaves (issue 10 item 7): a server that hangs
    (SIGSTOPped, a lock wait, stuck I/O) cannot hold the loop past that.
    Other threads (tasks, the checkpoint after a promotion) are not bounded."""
    _bound.budget = budget


def _budget() -> float | None:
    fn = getattr(_bound, "budget", None)
    left = fn() if fn is not None else None
    return None if left is None else max(TIMEOUT_FLOOR, left)


class LocalDb:
    """One cached superuser connection to the local postmaster.

    The connection is asynchronous (libpq's non-blocking mode): every wait for
    the server is a select() with a deadline, so a call ends in Timeout when
    its thread's bound runs out, whatever the server does; the connection is
    then closed and the next call opens another.  The same bound is the
    session's statement_timeout, so a query the server is still running (a
    lock wait) is cancelled there too."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self._conn: psycopg2.extensions.connection | None = None
        self._statement_timeout: int | None = None  # ms, as last SET on this session
        self._lock = threading.RLock()
        self.timed_out = False  # the last call ended because the server did not answer in time

    @staticmethod
    def _wait(conn: psycopg2.extensions.connection, until: float | None) -> None:
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                raise Timeout("postgres did not answer in time")
            fd = conn.fileno()
            if state == psycopg2.extensions.POLL_READ:
                select.select([fd], [], [], left)
            elif state == psycopg2.extensions.POLL_WRITE:
                select.select([], [fd], [], left)
            else:
                raise psycopg2.OperationalError(f"unexpected poll state {state}")

    def _connection(self, until: float | None = None) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            self._statement_timeout = None
            conn = psycopg2.connect(async_=1, **self.params)
            limit = time.monotonic() + CONNECT_TIMEOUT
            try:
                self._wait(conn, limit if until is None else min(until, limit))
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except psycopg2.Error:
                    pass
            self._conn = None

    def _run(self, conn: psycopg2.extensions.connection, sql: str, args: tuple[Any, ...],
             until: float | None) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            self._wait(conn, until)
            return cur.fetchall() if cur.description else []

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        budget = _budget()
        until = None if budget is None else time.monotonic() + budget
        if not self._lock.acquire(timeout=-1 if budget is None else budget):
            self.timed_out = True
            raise Timeout("another thread's query on this connection did not end in time")
        try:
            self.timed_out = False
            conn = self._connection(until)
            wanted = 0 if budget is None else int(math.ceil(budget)) * 1000
            if wanted != self._statement_timeout:
                self._run(conn, "SET statement_timeout = %s", (wanted,), until)
                self._statement_timeout = wanted
            return self._run(conn, sql, args, until)
        except psycopg2.Error as exc:
            self.timed_out = isinstance(exc, (Timeout, psycopg2.extensions.QueryCanceledError))
            self.close()
            raise
        finally:
            self._lock.release()

    def sync_standby_names(self) -> list[str]:
        """Standbys named in synchronous_standby_names (as we write it)."""
        value = str(self.execute("SHOW synchronous_standby_names")[0][0] or "")
        return parse_ssn(value)

    def set_sync_standby_names(self, value: str, timeout: float = 5.0) -> None:
        """ALTER SYSTEM and reload, then wait until a new session sees the value
        (the reload reaches backends asynchronously); raises if it does not."""
        self.execute("ALTER SYSTEM SET synchronous_standby_names = %s", (value,))
        self.execute("SELECT pg_reload_conf()")
        budget = _budget()  # on the HA path: no longer than the lease leaves
        deadline = time.monotonic() + (timeout if budget is None else min(timeout, budget))
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
            pending_restart_reason=pending.reason(row[12]),
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
