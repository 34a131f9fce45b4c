#!/usr/bin/python3
"""howdah-backup-keeper: the pgBackRest stanza, the first full backup and scheduled backups.

Runs under supervisord on every node (archiving on).  Every --interval seconds it asks the agent
(GET /patroni) whether this node is a running primary; replicas and stopped nodes do nothing,
so after a failover or switchover the new primary's keeper carries on the duty.  On the
primary it

* creates the stanza when missing (``stanza-create``, idempotent) and takes a full backup when
  the stanza holds none;
* takes a ``--type`` backup (full, diff or incr) at every time of ``--schedule`` (cron syntax,
  ``minute hour day-of-month month day-of-week`` in UTC, Spilo's default ``00 01 * * *``), then
  expires what exceeds the retention (``repo1-retention-full`` in the config, i.e.
  BACKUP_NUM_TO_RETAIN; ``--retain-days`` also expires full backups older than that);
* retries a failed backup every ``--retry-interval`` seconds until it succeeds or the next
  scheduled time comes, logging each failure.

Each outcome is written to ``--status-file`` (JSON: last success and failure, consecutive
failures) for /metrics.  ``--once`` runs one round; with ``--now`` it takes the scheduled
backup at once (a direct trigger of the schedule, for drills and tests).
"""
from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

# pgBackRest `info` status codes that mean the stanza must still be created
MISSING_STANZA = {1, 3}
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def log(message: str) -> None:
    print(f"backup-keeper: {message}", flush=True)


# --- cron ------------------------------------------------------------------------------------
class CronError(ValueError):
    pass


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"{name}: bad step {step_text!r}")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise CronError(f"{name}: bad range {body!r}")
            first, last = int(a), int(b)
        elif body.isdigit():
            first = last = int(body)
            if step_text:
                last = high
        else:
            raise CronError(f"{name}: {body!r} is not a number, range or *")
        if first < low or last > high or first > last:
            raise CronError(f"{name}: {part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return values


class Cron:
    """A 5-field cron expression (UTC).  Day of month and day of week: when both are
    restricted, either matching is enough (as cron does)."""

    def __init__(self, text: str) -> None:
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"{text!r} has {len(parts)} fields, not 5 (minute hour day-of-month month day-of-week)")
        self.text = text
        sets = [_field(p, n, lo, hi) for p, (n, lo, hi) in zip(parts, FIELDS)]
        self.minutes, self.hours, self.days, self.months, dows = sets
        self.dows = {d % 7 for d in dows}  # 0 and 7 are Sunday
        self.any_day, self.any_dow = parts[2] == "*", parts[4] == "*"

    def matches(self, t: datetime) -> bool:
        return (t.minute in self.minutes and t.hour in self.hours and t.month in self.months
                and self._day_matches(t))

    def next_after(self, t: datetime) -> datetime:
        """The first matching minute strictly after t (UTC)."""
        cur = t.astimezone(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = cur + timedelta(days=366 * 5)  # Feb 29 schedules match once in four years
        while cur < limit:
            if cur.month not in self.months:
                cur = (cur.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(cur):
                cur = cur.replace(hour=0, minute=0) + timedelta(days=1)
            elif cur.hour not in self.hours:
                cur = cur.replace(minute=0) + timedelta(hours=1)
            elif cur.minute not in self.minutes:
                cur += timedelta(minutes=1)
            else:
                return cur
        raise CronError(f"{self.text!r} never matches")

    def _day_matches(self, t: datetime) -> bool:
        day_ok, dow_ok = t.day in self.days, (t.isoweekday() % 7) in self.dows
        if self.any_day or self.any_dow:
            return day_ok and dow_ok
        return day_ok or dow_ok


# --- the agent and pgBackRest ------------------------------------------------------------------
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


class Keeper:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cron = Cron(args.schedule) if args.schedule else None
        self.status: dict[str, Any] = self._load_status()
        self.next_due: datetime | None = None
        self.retry_at: float | None = None

    def _load_status(self) -> dict[str, Any]:
        try:
            with open(self.args.status_file) as f:
                loaded = json.load(f)
            return dict(loaded) if isinstance(loaded, dict) else {}
        except (OSError, ValueError, TypeError):
            return {}

    def _save_status(self) -> None:
        if not self.args.status_file:
            return
        tmp = self.args.status_file + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self.status, f)
            os.replace(tmp, self.args.status_file)
        except OSError as exc:
            log(f"cannot write {self.args.status_file}: {exc}")

    def record(self, kind: str, ok: bool, seconds: float, detail: str = "") -> None:
        now = time.time()
        if ok:
            self.status.update(last_success=now, last_success_type=kind, last_duration_seconds=round(seconds, 3),
                               consecutive_failures=0)
        else:
            self.status.update(last_failure=now, last_failure_reason=detail[-300:],
                               consecutive_failures=int(self.status.get("consecutive_failures", 0)) + 1)
        self.status["backups_taken"] = int(self.status.get("backups_taken", 0)) + int(ok)
        self._save_status()

    def ensure_stanza(self) -> dict[str, Any] | None:
        info = stanza_info(self.args)
        if info is None:
            return None
        if int((info.get("status") or {}).get("code", 0)) in MISSING_STANZA:
            log(f"creating stanza {self.args.stanza}")
            done = pgbackrest(self.args, "stanza-create")
            if done.returncode != 0:
                log(f"stanza-create failed: {done.stdout.strip()[-500:]}")
                return None
            info = stanza_info(self.args) or {}
        return info

    def backup(self, kind: str, why: str) -> bool:
        log(f"{why}: taking a {kind} backup of {self.args.stanza}")
        started = time.monotonic()
        done = pgbackrest(self.args, "backup", f"--type={kind}")
        took = time.monotonic() - started
        if done.returncode != 0:
            detail = done.stdout.strip()[-500:]
            log(f"{kind} backup failed (exit {done.returncode}) after {took:.1f}s: {detail}")
            self.record(kind, False, took, detail)
            return False
        log(f"{kind} backup of {self.args.stanza} done in {took:.1f}s")
        self.record(kind, True, took)
        self.expire()
        return True

    def expire(self) -> None:
        """Retention after each backup: the count from the config, then the age limit."""
        done = pgbackrest(self.args, "expire")
        if done.returncode != 0:
            log(f"expire failed: {done.stdout.strip()[-300:]}")
        if self.args.retain_days:
            done = pgbackrest(self.args, "expire", "--repo1-retention-full-type=time",
                              f"--repo1-retention-full={self.args.retain_days}")
            if done.returncode != 0:
                log(f"expire by age failed: {done.stdout.strip()[-300:]}")
        info = stanza_info(self.args) or {}
        labels = [b.get("label", "?") for b in info.get("backup") or []]
        log(f"retention applied: {len(labels)} backup(s) kept: {' '.join(labels)}")
        self.status["backups_in_repository"] = len(labels)
        stops = [int((b.get("timestamp") or {}).get("stop") or 0) for b in info.get("backup") or []]
        if stops:
            self.status["newest_backup_stop"] = max(stops)
        self._save_status()

    def round(self, now: datetime | None = None, force: bool = False) -> bool:
        """One check; True when nothing is left to do (or we are not the primary)."""
        now = now or datetime.now(timezone.utc)
        if self.cron is not None and self.next_due is None:
            self.next_due = self.cron.next_after(now)
            log(f"schedule {self.cron.text!r} (UTC): next backup at {self.next_due.isoformat()}")
        due = force or (self.next_due is not None and now >= self.next_due)
        retrying = self.retry_at is not None and time.monotonic() >= self.retry_at
        if not is_primary(self.args):
            if due and self.cron is not None:
                self.next_due = self.cron.next_after(now)  # a replica skips; the primary's keeper runs
            self.retry_at = None
            return True
        info = self.ensure_stanza()
        if info is None:
            if due or retrying:
                self.record(self.args.type, False, 0.0, "the repository cannot be read (pgbackrest info failed)")
                if due and self.cron is not None:
                    self.next_due = self.cron.next_after(now)
            self.retry_at = time.monotonic() + self.args.retry_interval
            log(f"retrying in {self.args.retry_interval:.0f}s")
            return False
        if not info.get("backup"):
            ok = self.backup("full", f"stanza {self.args.stanza} has no backup")
        elif due or retrying:
            ok = self.backup(self.args.type, "scheduled" if due else "retrying the failed scheduled backup")
        else:
            return True
        if due and self.cron is not None:
            self.next_due = self.cron.next_after(now)
            log(f"next backup at {self.next_due.isoformat()}")
        self.retry_at = None if ok else time.monotonic() + self.args.retry_interval
        if not ok:
            log(f"retrying in {self.args.retry_interval:.0f}s")
        return ok


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="howdah-backup-keeper", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--stanza", required=True)
    p.add_argument("--api-url", default="http://127.0.0.1:8008/patroni", help="the agent's GET /patroni")
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--schedule", default="", help="cron schedule (UTC) of the backups; empty: only the first")
    p.add_argument("--type", default="full", choices=("full", "diff", "incr"))
    p.add_argument("--retain-days", type=int, default=0, help="also expire full backups older than this")
    p.add_argument("--retry-interval", type=float, default=300.0)
    p.add_argument("--status-file", default="")
    p.add_argument("--once", action="store_true", help="check once; exit 1 if a backup is missing or failed")
    p.add_argument("--now", action="store_true", help="with --once: take the scheduled backup now")
    args = p.parse_args(argv)
    if args.schedule:
        try:
            Cron(args.schedule)
        except CronError as exc:
            p.error(f"--schedule: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    keeper = Keeper(args)
    if args.once:
        return 0 if keeper.round(force=args.now) else 1
    while True:
        try:
            keeper.round()
        except Exception as exc:  # noqa: BLE001 - keep the keeper alive; say what went wrong
            log(f"check failed: {exc!r}")
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
