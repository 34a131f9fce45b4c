"""The SQL of a restore drill: the mark taken on the primary, the checks run on the restored copy.

The mark pins a point in the WAL where the primary's row counts are known exactly: in one
transaction the sampled tables are locked in SHARE mode (writers wait; ``lock_timeout`` bounds
how long the drill waits for them), counted, and a named restore point is written
(``pg_create_restore_point``).  Nothing can commit on those tables between the counts and the
restore point, so a copy recovered to that restore point has exactly those counts.  The locks
are held only while counting: the sample is a few tables below ``max_rows`` (estimated) unless
the operator names the tables.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import psycopg2
from psycopg2 import sql

SAMPLE_SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
   AND c.reltuples <= %s
 ORDER BY c.reltuples DESC, 1
 LIMIT %s
"""
INDEX_SQL = """
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam
 WHERE a.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence = 'p'
 ORDER BY (n.nspname = 'pg_catalog'), c.relpages DESC, 2
 LIMIT %s
"""


class DrillFailure(Exception):
    """The drill found the backup unusable (or could not run a step): one line, the reason."""


@dataclass(frozen=True)
class Mark:
    """A restore point on the primary and the row counts of the sampled tables at it."""
    name: str
    lsn: str
    counts: Mapping[str, int] = field(default_factory=dict)
    segment: str = ""


def _connect(kw: Mapping[str, Any], what: str) -> Any:
    try:
        conn = psycopg2.connect(**{"connect_timeout": 10, "application_name": "howdah-drill", **kw})
    except psycopg2.Error as exc:
        raise DrillFailure(f"cannot connect to {what}: {_first(exc)}") from None
    return conn


def query_one(kw: Mapping[str, Any], what: str, query: str) -> tuple[Any, ...]:
    """The one row of `query` on a new autocommit connection to `what` (DrillFailure when it
    cannot connect, psycopg2.Error when the query fails)."""
    conn = _connect(kw, what)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(query)
            return tuple(cur.fetchone())
    finally:
        conn.close()


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def mark_primary(primary: Mapping[str, Any], name: str, tables: Sequence[str], sample: int, max_rows: int,
                 lock_timeout: float) -> tuple[Mark, list[str]]:
    """Count the tables and write restore point `name` in one transaction on the primary."""
    conn = _connect(primary, "the primary")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            if cur.fetchone()[0]:
                raise DrillFailure("the server given as the primary is in recovery")
            if not tables:
                cur.execute(SAMPLE_SQL, (max_rows, sample))
                tables = [str(r[0]) for r in cur.fetchall()]
            cur.execute("SET LOCAL lock_timeout = %s", (f"{int(lock_timeout * 1000)}ms",))
            counts: dict[str, int] = {}
            for table in tables:
                ident = _ident(table)
                cur.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(ident))
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(ident))
                counts[table] = int(cur.fetchone()[0])
            cur.execute("SELECT pg_create_restore_point(%s)::text", (name,))
            lsn = str(cur.fetchone()[0])
        conn.commit()
        with conn.cursor() as cur:  # close the segment holding the restore point: it gets archived
            cur.execute("SELECT pg_walfile_name(%s::pg_lsn)", (lsn,))
            segment = str(cur.fetchone()[0])
            conn.commit()
            cur.execute("SELECT pg_switch_wal()")
            conn.commit()
    except psycopg2.Error as exc:
        raise DrillFailure(f"marking the primary failed: {_first(exc)}") from None
    finally:
        conn.close()
    return Mark(name, lsn, counts, segment), list(tables)


def _ident(table: str) -> sql.Composable:
    parts = _split_name(table)
    return sql.SQL(".").join(sql.Identifier(p) for p in parts)


def _split_name(table: str) -> list[str]:
    """'s.t', '"My S"."t.x"' or 't' -> parts (quotes removed)."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(table):
        ch = table[i]
        if ch == '"':
            if quoted and i + 1 < len(table) and table[i + 1] == '"':
                cur += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    if not all(parts) or len(parts) > 2:
        raise DrillFailure(f"--tables: {table!r} is not a table name (write schema.table or table)")
    return parts


def wait_archived(primary: Mapping[str, Any], segment: str, timeout: float) -> None:
    """Until pg_stat_archiver says `segment` (or a later one) reached the repository."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        last, failed = query_one(primary, "the primary",
                                 "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '') "
                                 "FROM pg_stat_archiver")
        if len(last) == len(segment) and last >= segment:  # names sort by timeline, then position
            return
        if time.monotonic() > deadline:
            raise DrillFailure(f"WAL segment {segment} was not archived within {timeout:.0f}s "
                               f"(last archived {last or 'none'}, last failed {failed or 'none'})")
        time.sleep(1)


@dataclass
class Checks:
    """What the checks on the restored copy found."""
    databases: int = 0
    counts: dict[str, list[int]] = field(default_factory=dict)  # table: [primary, restored]
    indexes_checked: int = 0
    heaps_checked: int = 0
    amcheck: str = ""  # why amcheck did not run, when it did not
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"databases": self.databases, "row_counts": self.counts, "indexes_checked": self.indexes_checked,
                "heaps_checked": self.heaps_checked, "amcheck": self.amcheck or "ran", "problems": self.problems}


def check_restored(local: Mapping[str, Any], dbname: str, mark: Mark | None, indexes: int) -> Checks:
    """Connect to the restored server: databases, row counts against the mark, amcheck."""
    found = Checks()
    conn = _connect({**local, "dbname": "postgres"}, "the restored server")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
            names = [str(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()
    for name in names:  # every database accepts a connection and reads its catalog
        db = _connect({**local, "dbname": name}, f"database {name} of the restored server")
        try:
            with db.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_class")
        except psycopg2.Error as exc:
            found.problems.append(f"database {name}: {_first(exc)}")
        finally:
            db.close()
    found.databases = len(names)
    conn = _connect({**local, "dbname": dbname}, f"database {dbname} of the restored server")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            _compare_counts(cur, mark, found)
            _amcheck(cur, mark, indexes, found)
    finally:
        conn.close()
    return found


def _compare_counts(cur: Any, mark: Mark | None, found: Checks) -> None:
    for table, expected in (mark.counts if mark else {}).items():
        try:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(table)))
            got = int(cur.fetchone()[0])
        except psycopg2.Error as exc:
            found.problems.append(f"table {table}: {_first(exc)}")
            continue
        found.counts[table] = [expected, got]
        if got != expected:
            found.problems.append(f"table {table}: {got} rows restored, {expected} on the primary at {mark.lsn}"
                                  if mark else f"table {table}: {got} rows")


def _amcheck(cur: Any, mark: Mark | None, indexes: int, found: Checks) -> None:
    """bt_index_check (with heapallindexed) on a sample of btree indexes, verify_heapam on the
    counted tables (PostgreSQL 14+).  The copy is scratch: creating the extension is harmless."""
    if indexes <= 0:
        found.amcheck = "off (--amcheck-indexes=0)"
        return
    try:
        cur.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    except psycopg2.Error as exc:
        found.amcheck = f"not available: {_first(exc)}"
        return
    cur.execute(INDEX_SQL, (indexes,))
    for oid, name in cur.fetchall():
        try:
            cur.execute("SELECT bt_index_check(%s::regclass, true)", (oid,))
            found.indexes_checked += 1
        except psycopg2.Error as exc:
            found.problems.append(f"amcheck index {name}: {_first(exc)}")
    cur.execute("SELECT count(*) FROM pg_proc WHERE proname = 'verify_heapam'")
    if not cur.fetchone()[0]:
        return
    for table in (mark.counts if mark else {}):
        try:
            cur.execute(sql.SQL("SELECT count(*) FROM verify_heapam({}::regclass)").format(
                sql.Literal(".".join(f'"{p}"' for p in _split_name(table)))))
            bad = int(cur.fetchone()[0])
            found.heaps_checked += 1
            if bad:
                found.problems.append(f"amcheck heap {table}: {bad} corruption report(s)")
        except psycopg2.Error as exc:
            found.problems.append(f"amcheck heap {table}: {_first(exc)}")
