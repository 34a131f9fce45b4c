"""Replication slots on the local instance: read, create, drop, advance, copy."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from howdah.pg.query import LocalDb

log = logging.getLogger(__name__)

SLOTS_SQL = """
SELECT slot_name, slot_type, plugin, database, active, xmin::text, catalog_xmin::text,
       restart_lsn - '0/0', confirmed_flush_lsn - '0/0', wal_status
  FROM pg_replication_slots WHERE NOT temporary
"""
COLS = ("name", "type", "plugin", "database", "active", "xmin", "catalog_xmin",
        "restart_lsn", "confirmed_flush_lsn", "wal_status")


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def read(db: LocalDb) -> dict[str, dict[str, Any]]:
    """{name: row} of every non-temporary slot (17+: not the server's synced ones)."""
    rows = db.execute(SLOTS_SQL)
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        row = dict(zip(COLS, r))
        for key in ("restart_lsn", "confirmed_flush_lsn"):
            row[key] = int(row[key]) if row[key] is not None else None
        out[str(row["name"])] = row
    return out


def create_physical(db: LocalDb, name: str) -> None:
    db.execute("SELECT pg_create_physical_replication_slot(%s, true) WHERE NOT EXISTS "
               "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (name, name))


def create_logical(params: Mapping[str, Any], name: str, database: str, plugin: str) -> None:
    """A logical slot lives in its database: connect there."""
    db = LocalDb({**params, "dbname": database})
    try:
        db.execute("SELECT pg_create_logical_replication_slot(%s, %s) WHERE NOT EXISTS "
                   "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
                   (name, plugin, name))
    finally:
        db.close()


def drop(db: LocalDb, name: str) -> bool:
    """Drop the slot if nobody streams from it; False if it is in use."""
    rows = db.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                      " WHERE slot_name = %s AND NOT active", (name,))
    return bool(rows)


def advance(params: Mapping[str, Any], db: LocalDb, name: str, lsn: int,
            database: str | None = None) -> None:
    """pg_replication_slot_advance (a logical one from its own database); the
    server caps it at what this node has replayed."""
    if database is None:
        db.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (name, lsn_text(lsn)))
        return
    other = LocalDb({**params, "dbname": database})
    try:
        other.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                      (name, lsn_text(lsn)))
    finally:
        other.close()


def fetch_state_files(leader: LocalDb, names: list[str]) -> dict[str, dict[str, Any]]:
    """The leader's logical slots with their on-disk state file (pg_replslot/<name>/state)."""
    rows = leader.execute(
        "SELECT s.slot_name, s.plugin, d.datname, s.confirmed_flush_lsn - '0/0',"
        " pg_read_binary_file('pg_replslot/' || s.slot_name || '/state')"
        " FROM pg_replication_slots s JOIN pg_database d ON d.oid = s.datoid"
        " WHERE s.slot_type = 'logical' AND NOT s.temporary AND NOT pg_is_in_recovery()"
        " AND s.slot_name = ANY(%s)", (names,))
    return {str(r[0]): {"plugin": r[1], "database": r[2],
                        "confirmed_flush_lsn": int(r[3]) if r[3] is not None else None,
                        "data": bytes(r[4])} for r in rows}


def install_state_files(data_dir: Path, files: Mapping[str, bytes]) -> None:
    """Write slot state files into a STOPPED instance (they load at startup),
    each through a .tmp directory renamed into place, fsynced."""
    root = data_dir / "pg_replslot"
    for name, data in files.items():
        final, tmp = root / name, root / f"{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        state = tmp / "state"
        fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        _fsync_dir(final)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SEGMENT_RE = r"^[0-9A-F]{24}$"
MAX_FETCH = 64  # segments (1 GB at 16 MB) fetched for one copied slot, at most


def segno(name: str, segsize: int) -> int:
    return int(name[8:16], 16) * (0x100000000 // segsize) + int(name[16:24], 16)


def fetch_missing_wal(leader: LocalDb, local: LocalDb, data_dir: Path, from_lsn: int) -> int:
    """Copy from the leader the WAL segments a copied logical slot still needs
    (from its restart_lsn) that this replica never had: a slot is copied with
    the leader's position, which may predate this replica's base backup.
    Returns the number of segments written."""
    segsize = int(local.execute(
        "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'")[0][0])
    oldest = local.execute("SELECT min(name) FROM pg_ls_waldir() WHERE name ~ %s",
                           (SEGMENT_RE,))[0][0]
    first = from_lsn // segsize
    last = segno(str(oldest), segsize) if oldest else None
    names = [str(r[0]) for r in leader.execute(
        "SELECT name FROM pg_ls_waldir() WHERE name ~ %s ORDER BY name", (SEGMENT_RE,))]
    wanted = [n for n in names if segno(n, segsize) >= first and
              (last is None or segno(n, segsize) < last)][:MAX_FETCH]
    written = 0
    for name in wanted:
        path = data_dir / "pg_wal" / name
        if path.exists():
            continue
        data = bytes(leader.execute("SELECT pg_read_binary_file(%s)", (f"pg_wal/{name}",))[0][0])
        if len(data) != segsize:
            continue
        tmp = path.with_name(name + ".howdah.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        written += 1
    if written:
        _fsync_dir(data_dir / "pg_wal")
    return written
