"""A restore drill: prove the newest backup restores and replays into a working server.

1. ``pgbackrest info`` names the newest backup set (or the one asked for).
2. With a primary to talk to, a restore point is written there with the row counts of a few
   tables at it (howdah.backup.checks), and the drill waits until its WAL segment is archived.
3. ``pgbackrest restore`` of that set into a fresh scratch directory (``mkdtemp``, never the
   real data directory: ``--pg1-path`` points at the scratch copy, tablespaces are mapped into
   it, archiving is off in the copy), recovering to the restore point (or, without a primary,
   to the end of the archive) and promoting.
4. PostgreSQL starts on the copy on a scratch port, listening only on a socket inside the
   scratch directory (trust authentication there, no TCP, no replication, no synchronous
   standbys, no archive_cleanup_command), and must leave recovery.
5. Checks: every database accepts a connection, the row counts equal the primary's at the
   restore point, ``amcheck`` on a sample of btree indexes and the counted tables' heaps.
6. The server is stopped and the scratch directory removed, whatever happened; the result and
   its durations are recorded (howdah.backup.record) and returned.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from . import record
from .checks import Checks, DrillFailure, Mark, check_restored, mark_primary, query_one, wait_archived

Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    pgbackrest: tuple[str, ...]  # pgbackrest --config=... --stanza=...
    scratch_parent: Path
    data_dir: Path | None = None  # the node's real data directory: never touched
    bin_dir: Path | None = None  # default: /usr/lib/postgresql/<the backup's major>/bin
    primary: Mapping[str, Any] | None = None  # psycopg2 kwargs; None: replay to the archive's end
    backup_set: str = ""  # default: the newest
    dbname: str = "postgres"
    tables: tuple[str, ...] = ()
    sample: int = 3
    max_rows: int = 1_000_000
    lock_timeout: float = 5.0
    amcheck_indexes: int = 20
    archive_timeout: float = 300.0
    restore_timeout: float = 6 * 3600.0
    start_timeout: float = 3600.0
    shared_buffers: str = "128MB"
    node: str = ""
    status_file: Path | None = None
    annotate: bool = True


@dataclass
class Timer:
    marks: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def lap(self, name: str, since: float) -> float:
        self.marks[name] = round(time.monotonic() - since, 3)
        return time.monotonic()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _tail(text: str, lines: int = 6) -> str:
    """The last lines of a tool's output; pgBackRest's ERROR lines first when it printed any."""
    rows = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [row for row in rows if "ERROR:" in row or "FATAL:" in row or "PANIC:" in row]
    return " | ".join((errors or rows)[-lines:])[:600]


def newest_backup(plan: Plan) -> dict[str, Any]:
    done = subprocess.run([*plan.pgbackrest, "info", "--output=json"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    if done.returncode != 0:
        raise DrillFailure(f"pgbackrest info failed (exit {done.returncode}): {_tail(done.stdout, 3)}")
    stanzas = json.loads(done.stdout or "[]")
    stanza: dict[str, Any] = next((s for s in stanzas if isinstance(s, dict)), {})
    backups: list[dict[str, Any]] = [b for b in stanza.get("backup") or [] if isinstance(b, dict)]
    if plan.backup_set:
        backups = [b for b in backups if b.get("label") == plan.backup_set]
        if not backups:
            raise DrillFailure(f"backup set {plan.backup_set} is not in the repository")
    if not backups:
        raise DrillFailure(f"stanza {stanza.get('name', '?')} has no backup to restore")
    best: dict[str, Any] = max(backups, key=_stop)
    return best


def _stop(backup: Mapping[str, Any]) -> int:
    stamps = backup.get("timestamp")
    return int(stamps.get("stop") or 0) if isinstance(stamps, dict) else 0


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def make_scratch(plan: Plan) -> Path:
    parent = plan.scratch_parent.resolve()
    if plan.data_dir is not None and _inside(parent, plan.data_dir):
        raise DrillFailure(f"the scratch directory {parent} is inside the data directory {plan.data_dir}: "
                           "give --scratch-dir outside it")
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="howdah-drill-", dir=parent))
    os.chmod(scratch, 0o700)
    if plan.data_dir is not None and _inside(plan.data_dir, scratch):  # cannot happen: mkdtemp is new
        raise DrillFailure("refusing a scratch directory that holds the data directory")
    return scratch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def restore(plan: Plan, label: str, scratch: Path, mark: Mark | None) -> None:
    data = scratch / "data"
    data.mkdir(mode=0o700)
    (scratch / "tablespaces").mkdir(mode=0o700)
    argv = [*plan.pgbackrest, "restore", f"--set={label}", f"--pg1-path={data}",
            f"--tablespace-map-all={scratch / 'tablespaces'}", "--archive-mode=off"]
    if mark is not None:
        argv += ["--type=name", f"--target={mark.name}", "--target-action=promote"]
    else:
        argv += ["--type=default"]
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=plan.restore_timeout)
    except subprocess.TimeoutExpired:
        raise DrillFailure(f"pgbackrest restore of {label} took longer than {plan.restore_timeout:.0f}s") from None
    if done.returncode != 0:
        raise DrillFailure(f"pgbackrest restore of {label} failed (exit {done.returncode}): {_tail(done.stdout, 3)}")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def isolate(plan: Plan, scratch: Path, port: int) -> None:
    """Settings appended to the copy's postgresql.auto.conf (read last, so they win)."""
    data = scratch / "data"
    (scratch / "hba.conf").write_text("local all all trust\n")
    (scratch / "ident.conf").write_text("")
    settings = {
        "port": str(port), "listen_addresses": "", "unix_socket_directories": str(scratch),
        "hba_file": str(scratch / "hba.conf"), "ident_file": str(scratch / "ident.conf"),
        "archive_mode": "off", "archive_command": "", "archive_cleanup_command": "", "recovery_end_command": "",
        "primary_conninfo": "", "primary_slot_name": "", "synchronous_standby_names": "",
        "recovery_min_apply_delay": "0", "hot_standby": "on", "shared_buffers": plan.shared_buffers,
        "huge_pages": "off", "logging_collector": "off", "log_destination": "stderr", "ssl": "off",
        "cluster_name": "howdah-drill", "external_pid_file": "", "autovacuum": "off",
    }
    with open(data / "postgresql.auto.conf", "a") as conf:
        conf.write("\n# howdah backup drill: a scratch copy, isolated\n")
        conf.writelines(f"{key} = {_quote(value)}\n" for key, value in settings.items())
    for name in ("standby.signal", "postmaster.pid"):  # recovery.signal (pgbackrest's) stays
        (data / name).unlink(missing_ok=True)


def bin_dir(plan: Plan, scratch: Path) -> Path:
    if plan.bin_dir is not None:
        return plan.bin_dir
    version = (scratch / "data" / "PG_VERSION").read_text().strip()
    found = Path(f"/usr/lib/postgresql/{version}/bin")
    if not (found / "pg_ctl").exists():
        raise DrillFailure(f"the backup is PostgreSQL {version} and {found}/pg_ctl is missing: give --bin-dir")
    return found


class Scratch:
    """The copy's server: start, wait until promoted, stop (always)."""

    def __init__(self, plan: Plan, scratch: Path, port: int) -> None:
        self.plan, self.dir, self.port = plan, scratch, port
        self.bin = bin_dir(plan, scratch)
        self.log = scratch / "postgres.log"

    def local(self) -> dict[str, Any]:
        return {"host": str(self.dir), "port": self.port, "user": self._user()}

    def _user(self) -> str:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name

    def log_tail(self) -> str:
        try:
            return _tail(self.log.read_text(errors="replace"), 4)
        except OSError:
            return ""

    def start(self) -> None:
        argv = [str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.log), "-w",
                "-t", str(int(self.plan.start_timeout)), "start"]
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=self.plan.start_timeout + 60)
        if done.returncode != 0:
            raise DrillFailure(f"the restored server did not start: {self.log_tail() or _tail(done.stdout, 3)}")

    def wait_promoted(self, timeout: float) -> str:
        """Until recovery ended (the target reached and the copy promoted); its LSN then."""
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            if not (self.dir / "data" / "postmaster.pid").exists():
                raise DrillFailure(f"the restored server stopped during recovery: {self.log_tail()}")
            try:
                in_recovery, lsn = query_one(
                    {"dbname": "postgres", "connect_timeout": 5, **self.local()}, "the restored server",
                    "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "
                    "pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text")
                if not in_recovery:
                    return str(lsn)
            except (DrillFailure, psycopg2.Error):  # not accepting connections yet
                pass
            if time.monotonic() > deadline:
                raise DrillFailure(f"the restored server was still in recovery after {timeout:.0f}s: "
                                   f"{self.log_tail()}")
            time.sleep(1)

    def stop(self) -> None:
        data = self.dir / "data"
        for mode in ("fast", "immediate"):
            if not (data / "postmaster.pid").exists():
                return
            subprocess.run([str(self.bin / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", "120", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
        try:  # still there: the postmaster of *this* copy (its pid file), nothing else
            pid = int((data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


def run(plan: Plan, say: Say) -> dict[str, Any]:
    """One drill; the result (``result`` is ``passed`` or ``failed``, ``error`` says why)."""
    t = Timer()
    result: dict[str, Any] = {"started_at": _now(), "node": plan.node, "result": "failed"}
    label = ""
    scratch: Path | None = None
    server: Scratch | None = None
    try:
        backup = newest_backup(plan)
        label = str(backup["label"])
        result.update(backup=label, backup_type=backup.get("type"),
                      backup_stop=(backup.get("timestamp") or {}).get("stop"))
        say(f"INFO: drill of backup {label} ({backup.get('type')}), restored under {plan.scratch_parent}")
        mark: Mark | None = None
        step = time.monotonic()
        if plan.primary is not None:
            name = f"howdah-drill-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
            mark, tables = mark_primary(plan.primary, name, plan.tables, plan.sample, plan.max_rows,
                                        plan.lock_timeout)
            say(f"INFO: restore point {mark.name} at {mark.lsn} on the primary; rows: "
                + (", ".join(f"{k}={v}" for k, v in mark.counts.items()) or "no table sampled"))
            wait_archived(plan.primary, mark.segment, plan.archive_timeout)
            result.update(target=mark.name, target_lsn=mark.lsn)
        else:
            say("INFO: no primary to mark: replaying to the end of the archive, row counts not compared")
            result.update(target="end of archive")
        step = t.lap("mark_seconds", step)
        scratch = make_scratch(plan)
        restore(plan, label, scratch, mark)
        step = t.lap("restore_seconds", step)
        say(f"INFO: restored in {t.marks['restore_seconds']:.1f}s; starting it on a scratch port")
        port = free_port()
        isolate(plan, scratch, port)
        server = Scratch(plan, scratch, port)
        server.start()
        result["reached_lsn"] = server.wait_promoted(plan.start_timeout)
        step = t.lap("replay_seconds", step)
        say(f"INFO: WAL replayed and the copy promoted at {result['reached_lsn']} in "
            f"{t.marks['replay_seconds']:.1f}s")
        found: Checks = check_restored(server.local(), plan.dbname, mark, plan.amcheck_indexes)
        t.lap("check_seconds", step)
        result["checks"] = found.as_json()
        if found.problems:
            raise DrillFailure("; ".join(found.problems[:5]))
        result["result"] = "passed"
    except DrillFailure as exc:
        result["error"] = str(exc)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if server is not None:
            server.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    result.update(t.marks, finished_at=_now(), seconds=round(time.monotonic() - t.started, 3))
    _record(plan, label, result, say)
    return result


def _record(plan: Plan, label: str, result: dict[str, Any], say: Say) -> None:
    if plan.annotate and label:
        error = record.annotate(plan.pgbackrest, label, result)
        if error:
            say(f"WARNING: the result is not recorded in the repository: {error}")
    if plan.status_file is not None:
        error = record.save(plan.status_file, result)
        if error:
            say(f"WARNING: {error}")
