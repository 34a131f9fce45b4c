"""howdah-cron: Spilo's CRONTAB lines, run as the container's user, and certificate reloads.

The image runs no system cron (it would need root to switch users); this small scheduler runs
under supervisord as postgres instead.  Lines use the five-field cron syntax (numbers, names of
months and weekdays, ``*``, ranges, steps, lists; ``@hourly``, ``@daily``, ``@weekly``,
``@monthly``, ``@yearly``, ``@reboot``).  As in cron, when both day-of-month and day-of-week are
restricted a day matching either runs the line.  A line whose previous run has not finished is
skipped that minute, with a log line.

``--watch FILE ...``: when any of these files changes (PostgreSQL's certificate, key, CA, CRL),
PostgreSQL is told to reload (``pg_ctl reload``), which re-reads them without a restart.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Sequence

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_DAYS = "sun mon tue wed thu fri sat".split()
_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTHS), (0, 7, _DAYS))
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_any: bool  # day-of-month was '*'
    weekdays_any: bool  # day-of-week was '*'
    command: str
    at_reboot: bool = False

    def due(self, t: time.struct_time) -> bool:
        if self.at_reboot:
            return False
        if t.tm_min not in self.minutes or t.tm_hour not in self.hours or t.tm_mon not in self.months:
            return False
        weekday = (t.tm_wday + 1) % 7  # struct_time: Monday is 0; cron: Sunday is 0
        day_ok, weekday_ok = t.tm_mday in self.days, weekday in self.weekdays
        if self.days_any or self.weekdays_any:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def _value(text: str, lo: int, hi: int, names: Sequence[str]) -> int:
    low = text.lower()
    if names and low in names:
        return names.index(low) + (1 if names is _MONTHS else 0)
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise CronError(f"{text!r} is not in {lo}-{hi}")
    return int(text)


def _field(text: str, lo: int, hi: int, names: Sequence[str]) -> frozenset[int]:
    result: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"bad step in {part!r}")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, lo, hi, names), _value(b, lo, hi, names)
            if start > end:
                raise CronError(f"range {part!r} runs backwards")
        else:
            start = _value(base, lo, hi, names)
            end = hi if step_text else start
        result.update(range(start, end + 1, step))
    return frozenset(result)


def parse(line: str) -> Entry:
    """One cron line -> Entry; raises CronError saying what is wrong."""
    text = line.strip()
    if "\n" in text or "\r" in text:
        raise CronError("holds a line break")
    if text.startswith("@"):
        macro, _, command = text.partition(" ")
        if macro == "@reboot":
            if not command.strip():
                raise CronError("has no command")
            return Entry(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), True, True,
                         command.strip(), at_reboot=True)
        if macro not in _MACROS:
            raise CronError(f"unknown {macro}")
        text = _MACROS[macro] + " " + command
    parts = text.split(None, 5)
    if len(parts) < 6 or not parts[5].strip():
        raise CronError("needs five schedule fields and a command")
    sets = [_field(p, lo, hi, names) for p, (lo, hi, names) in zip(parts[:5], _FIELDS)]
    weekdays = frozenset(0 if d == 7 else d for d in sets[4])
    return Entry(sets[0], sets[1], sets[2], sets[3], weekdays,
                 parts[2] == "*", parts[4] == "*", parts[5].strip())


def log(message: str) -> None:
    print(f"howdah-cron: {message}", flush=True)


class Runner:
    def __init__(self, entries: list[Entry], watch: Sequence[str], pgdata: str, bin_dir: str) -> None:
        self.entries = entries
        self.running: dict[int, subprocess.Popen[bytes]] = {}
        self.watch = list(watch)
        self.pgdata, self.bin_dir = pgdata, bin_dir
        self.stamps = self._stamps()

    def _stamps(self) -> dict[str, tuple[float, int] | None]:
        result: dict[str, tuple[float, int] | None] = {}
        for path in self.watch:
            try:
                st = os.stat(path)
                result[path] = (st.st_mtime, st.st_size)
            except OSError:
                result[path] = None
        return result

    def start(self, index: int) -> None:
        entry = self.entries[index]
        old = self.running.get(index)
        if old is not None and old.poll() is None:
            log(f"skipped {entry.command!r}: its previous run (pid {old.pid}) is still going")
            return
        proc = subprocess.Popen(["/bin/sh", "-c", entry.command], stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.running[index] = proc
        log(f"started {entry.command!r} (pid {proc.pid})")

    def reap(self) -> None:
        for index, proc in list(self.running.items()):
            code = proc.poll()
            if code is not None:
                del self.running[index]
                log(f"{self.entries[index].command!r} exited {code}")

    def check_certificates(self) -> None:
        stamps = self._stamps()
        if stamps == self.stamps:
            return
        changed = [p for p in stamps if stamps[p] != self.stamps.get(p)]
        self.stamps = stamps
        res = subprocess.run([os.path.join(self.bin_dir, "pg_ctl"), "-D", self.pgdata, "reload"],
                             capture_output=True, text=True, check=False)
        outcome = "PostgreSQL reloaded" if res.returncode == 0 else \
            f"pg_ctl reload failed ({res.stderr.strip() or res.returncode})"
        log(f"certificate files changed ({', '.join(changed)}): {outcome}")

    def run(self) -> None:
        for index, entry in enumerate(self.entries):
            if entry.at_reboot:
                self.start(index)
        last_minute = int(time.time() // 60)
        while True:
            time.sleep(min(10.0, 60 - time.time() % 60 + 0.05))
            self.reap()
            if self.watch:
                self.check_certificates()
            minute = int(time.time() // 60)
            if minute != last_minute:
                last_minute = minute
                now = time.localtime(minute * 60)
                for index, entry in enumerate(self.entries):
                    if entry.due(now):
                        self.start(index)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="howdah-cron", description=__doc__.split("\n\n")[0])
    parser.add_argument("--crontab", help="file with one cron line per line")
    parser.add_argument("--watch", nargs="*", default=[], help="certificate files: reload PostgreSQL when they change")
    parser.add_argument("--pgdata", default=os.environ.get("PGDATA", ""))
    parser.add_argument("--bin-dir", default="")
    args = parser.parse_args(argv)
    entries: list[Entry] = []
    if args.crontab:
        with open(args.crontab, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    try:
                        entries.append(parse(line))
                    except CronError as exc:
                        print(f"howdah-cron: {args.crontab} line {number}: {exc}", file=sys.stderr)
                        return 2
    log(f"{len(entries)} cron line(s), watching {len(args.watch)} certificate file(s)")
    try:
        Runner(entries, args.watch, args.pgdata, args.bin_dir).run()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
