"""Archive health: is WAL reaching the repository, how old is the newest backup, how big is the
repository, and when does the volume fill at the current rate?  Read by GET /metrics.

A thread of the agent samples every ``interval`` seconds (its own connection, never the HA
loop's):

* ``pg_stat_archiver`` (archived and failed counts, last archived / failed WAL and times) and
  the ``.ready`` files in ``pg_wal/archive_status`` (segments waiting for archive_command);
* the filesystem holding ``pg_wal`` (statvfs): size, space available, its growth rate over the
  last ``rate_window`` seconds and the seconds until it is full at that rate;
* every ``repository_interval`` seconds, with a pgBackRest config and stanza, ``pgbackrest info``
  (backups, the newest one's end) and ``repo-ls`` of the stanza's archive and backup paths (the
  repository's size), in a second thread (an unreachable repository takes pgBackRest minutes
  to give up, and must not stall the archiver's samples).

Archiving is *failing* while the archiver's last failure is newer than its last success.  After
``warn_after`` seconds of that (or of a segment waiting that long) it logs a WARNING, repeated
every ``warn_after`` seconds (at least 60) while it lasts, and one INFO line when archiving
recovers.  Nothing here deletes WAL: PostgreSQL keeps every segment marked ``.ready`` until
archive_command succeeds for it, and the entrypoint refuses pgBackRest's
``archive-push-queue-max`` (which would acknowledge and drop WAL it could not push).

The config is the agent YAML's Howdah-only ``archive_health`` section (the entrypoint renders it
with archiving on); without it the defaults apply and the repository is not read.
"""
from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

log = logging.getLogger("howdah.archive")

ARCHIVER_SQL = """
SELECT archived_count, last_archived_wal, extract(epoch FROM last_archived_time)::float8,
       failed_count, last_failed_wal, extract(epoch FROM last_failed_time)::float8,
       current_setting('archive_mode'), pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN 0 ELSE (pg_current_wal_lsn() - '0/0')::bigint END,
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')
  FROM pg_stat_archiver
"""


class ArchiveConfigError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"archive_health.{field_name}: {message}")
        self.field = f"archive_health.{field_name}"


@dataclass(frozen=True)
class ArchiveConfig:
    interval: float = 15.0
    warn_after: float = 300.0
    repository_interval: float = 300.0
    rate_window: float = 600.0
    pgbackrest_config: str = ""  # with stanza: read the repository
    stanza: str = ""
    status_file: str = ""  # the backup keeper's backup-status.json
    timeout: float = 120.0  # for each pgbackrest call

    @classmethod
    def from_raw(cls, raw: Any) -> "ArchiveConfig":
        if raw in (None, ""):
            return cls()
        if not isinstance(raw, Mapping):
            raise ArchiveConfigError("", "must be a mapping")
        values: dict[str, Any] = {}
        for name in ("interval", "warn_after", "repository_interval", "rate_window", "timeout"):
            if name in raw:
                value = raw[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ArchiveConfigError(name, f"{value!r} is not a positive number of seconds")
                values[name] = float(value)
        for name in ("pgbackrest_config", "stanza", "status_file"):
            if raw.get(name) not in (None, ""):
                values[name] = str(raw[name])
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ArchiveConfigError(sorted(unknown)[0], "is not a setting (use interval, warn_after, "
                                     "repository_interval, rate_window, timeout, pgbackrest_config, stanza, status_file)")
        return cls(**values)


@dataclass(frozen=True)
class Archiver:
    """One row of pg_stat_archiver plus what decides whether this node archives."""
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: float | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: float | None
    archive_mode: str
    in_recovery: bool
    wal_lsn: int
    segment_size: int

    @property
    def active(self) -> bool:
        """This node runs archive_command (a primary with archive_mode on, or always)."""
        return self.archive_mode == "always" or (self.archive_mode == "on" and not self.in_recovery)

    @property
    def failing(self) -> bool:
        if not self.active or not self.failed_count or self.last_failed_time is None:
            return False
        return self.last_archived_time is None or self.last_failed_time > self.last_archived_time


@dataclass(frozen=True)
class Repository:
    ok: bool
    checked_at: float
    backups: int = 0
    newest_stop: float | None = None
    size_bytes: int | None = None
    error: str = ""


@dataclass(frozen=True)
class Health:
    sampled_at: float = 0.0
    archiver: Archiver | None = None
    last_archived_lsn: int = 0  # end of the last archived segment
    failing_since: float | None = None
    pending_segments: int = 0
    oldest_pending: float | None = None  # mtime of the oldest .ready file
    volume_size: int = 0
    volume_available: int = 0
    volume_growth: float = 0.0  # bytes/s over rate_window
    wal_rate: float = 0.0  # bytes/s of WAL written (primary)
    repository: Repository | None = None
    keeper: Mapping[str, Any] = field(default_factory=dict)

    @property
    def seconds_to_full(self) -> float:
        if self.volume_growth <= 0 or not self.volume_size:
            return math.inf
        return self.volume_available / self.volume_growth

    def failing_seconds(self, now: float) -> float:
        return max(0.0, now - self.failing_since) if self.failing_since is not None else 0.0


# ---- pure helpers --------------------------------------------------------------------------------
def segment_end_lsn(wal: str | None, segment_size: int) -> int | None:
    """'000000010000000A00000003' -> the LSN where that segment ends; None for other names."""
    if not wal or segment_size <= 0:
        return None
    name = wal[:24]
    if len(name) != 24 or any(c not in "0123456789ABCDEFabcdef" for c in name) or ("." in wal and not
                                                                                     wal.endswith(".partial")):
        return None
    per_id = 0x100000000 // segment_size
    segno = int(name[8:16], 16) * per_id + int(name[16:24], 16)
    return (segno + 1) * segment_size


def wal_timeline(wal: str | None) -> int:
    """The timeline in a WAL, .partial or .history file name; 0 for none."""
    head = (wal or "")[:8]
    return int(head, 16) if len(head) == 8 and all(c in "0123456789ABCDEFabcdef" for c in head) else 0


def rate(samples: "deque[tuple[float, float]]") -> float:
    """Bytes per second between the oldest and the newest sample (0 with too little span)."""
    if len(samples) < 2:
        return 0.0
    (t0, v0), (t1, v1) = samples[0], samples[-1]
    return (v1 - v0) / (t1 - t0) if t1 - t0 > 0 else 0.0


def add_sample(samples: "deque[tuple[float, float]]", t: float, value: float, window: float,
               monotonic_values: bool = False) -> None:
    if monotonic_values and samples and value < samples[-1][1]:
        samples.clear()  # a new timeline or a restored node: start over
    samples.append((t, value))
    while len(samples) > 2 and t - samples[1][0] >= window:
        samples.popleft()


def failing_since(archiver: Archiver | None, previous: float | None, oldest_pending: float | None) -> float | None:
    """When the current failure began: the first failure seen in this streak, or the oldest
    segment still waiting if that is older (so an agent restarted mid-failure still knows)."""
    if archiver is None or not archiver.failing:
        return None
    first = previous if previous is not None else archiver.last_failed_time
    candidates = [t for t in (first, oldest_pending) if t is not None]
    return min(candidates) if candidates else None


def warning_line(h: Health, now: float) -> str:
    a = h.archiver
    assert a is not None
    waited = f"{h.pending_segments} segment(s)" + (f" ({h.pending_segments * a.segment_size // 2**20} MB)"
                                                     if a.segment_size else "")
    full = h.seconds_to_full
    fills = "not growing" if math.isinf(full) else f"full in about {full / 3600:.1f} h at the current rate"
    return (f"archiving has been failing for {h.failing_seconds(now):.0f} s: {a.failed_count} archive_command "
            f"failure(s), last failed WAL {a.last_failed_wal}, last archived {a.last_archived_wal or 'none'}; "
            f"{waited} wait in pg_wal and are kept until archived; the volume has "
            f"{h.volume_available // 2**20} MB available, {fills}. Check the repository and pgBackRest's log")


def stuck_line(h: Health, now: float) -> str:
    assert h.oldest_pending is not None
    return (f"archiving is behind: the oldest of {h.pending_segments} segment(s) waiting for archive_command "
            f"was written {now - h.oldest_pending:.0f} s ago and no failure is reported (a hanging "
            "archive_command?); they are kept in pg_wal until archived")


# ---- sampling ------------------------------------------------------------------------------------
def pending(data_dir: Path) -> tuple[int, float | None]:
    count, oldest = 0, None
    try:
        with os.scandir(data_dir / "pg_wal" / "archive_status") as entries:
            for entry in entries:
                if entry.name.endswith(".ready"):
                    count += 1
                    try:
                        mtime = entry.stat().st_mtime
                    except OSError:
                        continue
                    oldest = mtime if oldest is None else min(oldest, mtime)
    except OSError:
        pass
    return count, oldest


def volume(data_dir: Path) -> tuple[int, int, int]:
    """(size, available, used) bytes of the filesystem holding pg_wal (or the data directory)."""
    for path in (data_dir / "pg_wal", data_dir, *data_dir.parents):
        try:
            st = os.statvfs(path)
        except OSError:
            continue
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize
    return 0, 0, 0


def parse_info(text: str, stanza: str, now: float) -> Repository:
    stanzas = json.loads(text or "[]")
    entry = next((s for s in stanzas if s.get("name") == stanza), None) if isinstance(stanzas, list) else None
    backups = [b for b in (entry or {}).get("backup") or [] if not b.get("error")]
    stops = [float((b.get("timestamp") or {}).get("stop") or 0) for b in backups]
    return Repository(ok=True, checked_at=now, backups=len(backups), newest_stop=max(stops) if stops else None)


def parse_repo_ls(text: str) -> int:
    listing = json.loads(text or "{}")
    return sum(int(v.get("size") or 0) for v in listing.values() if isinstance(v, dict) and v.get("type") == "file")


Run = Callable[[list[str], float], "subprocess.CompletedProcess[str]"]


def _run(argv: list[str], timeout: float) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


def read_repository(cfg: ArchiveConfig, now: float, run: Run = _run) -> Repository:
    base = ["pgbackrest", f"--config={cfg.pgbackrest_config}", f"--stanza={cfg.stanza}", "--log-level-console=error"]
    try:
        info = run(base + ["info", "--output=json"], cfg.timeout)
        if info.returncode != 0:
            return Repository(ok=False, checked_at=now, error=info.stdout.strip()[-300:])
        repo = parse_info(info.stdout, cfg.stanza, now)
        size = 0
        for where in (f"archive/{cfg.stanza}", f"backup/{cfg.stanza}"):
            listing = run(base + ["repo-ls", "--recurse", "--output=json", where], cfg.timeout)
            if listing.returncode != 0:
                return replace(repo, ok=False, error=listing.stdout.strip()[-300:])
            size += parse_repo_ls(listing.stdout)
        return replace(repo, size_bytes=size)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return Repository(ok=False, checked_at=now, error=str(exc)[-300:])


class Monitor:
    """The sampling thread; ``health`` is its latest immutable snapshot."""

    def __init__(self, cfg: ArchiveConfig, data_dir: Path, query: Callable[[], Archiver | None],
                 clock: Callable[[], float] = time.time, run: Run = _run) -> None:
        self.cfg, self.data_dir, self.query, self.clock, self.run = cfg, data_dir, query, clock, run
        self.health = Health()
        self._used: deque[tuple[float, float]] = deque()
        self._wal: deque[tuple[float, float]] = deque()
        self._warned_at: float | None = None
        self._repository: Repository | None = None
        self._stop = threading.Event()

    def sample(self) -> Health:
        now = self.clock()
        prev = self.health
        try:
            archiver = self.query()
        except Exception as exc:  # noqa: BLE001 - postgres down or restarting: no archiver row
            log.debug("archive health: no pg_stat_archiver (%s)", exc)
            archiver = None
        count, oldest = pending(self.data_dir)
        size, available, used = volume(self.data_dir)
        add_sample(self._used, now, used, self.cfg.rate_window)
        if archiver is not None and not archiver.in_recovery:
            add_sample(self._wal, now, archiver.wal_lsn, self.cfg.rate_window, monotonic_values=True)
        lsn = prev.last_archived_lsn
        if archiver is not None:
            lsn = segment_end_lsn(archiver.last_archived_wal, archiver.segment_size) or lsn
        repository = self._repository
        health = Health(
            sampled_at=now, archiver=archiver, last_archived_lsn=lsn,
            failing_since=failing_since(archiver, prev.failing_since, oldest) if archiver is not None
            else prev.failing_since,
            pending_segments=count, oldest_pending=oldest, volume_size=size, volume_available=available,
            volume_growth=rate(self._used), wal_rate=rate(self._wal) if archiver is not None else 0.0,
            repository=repository, keeper=self._keeper())
        self._report(prev, health, now)
        self.health = health
        return health

    @property
    def reads_repository(self) -> bool:
        return bool(self.cfg.pgbackrest_config and self.cfg.stanza)

    def refresh_repository(self) -> Repository:
        """Read the repository (slow when it is unreachable: its own thread calls this)."""
        repository = read_repository(self.cfg, self.clock(), self.run)
        if not repository.ok:
            log.warning("archive health: the repository cannot be read: %s", repository.error or "?")
        self._repository = repository
        return repository

    def _keeper(self) -> Mapping[str, Any]:
        if not self.cfg.status_file:
            return {}
        try:
            loaded = json.loads(Path(self.cfg.status_file).read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _report(self, prev: Health, h: Health, now: float) -> None:
        repeat = max(self.cfg.warn_after, 60.0)
        if h.archiver is None:  # postgres down: nothing new to say
            return
        if h.failing_since is not None:
            if h.failing_seconds(now) >= self.cfg.warn_after and (
                    self._warned_at is None or now - self._warned_at >= repeat):
                log.warning(warning_line(h, now))
                self._warned_at = now
            return
        if prev.failing_since is not None and h.archiver is not None:
            if h.archiver.active:
                log.info("archiving recovered after failing for %.0f s: last archived WAL %s, %d segment(s) "
                         "still waiting", now - prev.failing_since, h.archiver.last_archived_wal, h.pending_segments)
            self._warned_at = None
        archiving = h.archiver is not None and h.archiver.active
        if archiving and h.oldest_pending is not None and now - h.oldest_pending >= self.cfg.warn_after and (
                self._warned_at is None or now - self._warned_at >= repeat):
            log.warning(stuck_line(h, now))
            self._warned_at = now

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - never let the monitor die silently
                log.exception("archive health sample failed")
            self._stop.wait(self.cfg.interval)

    def _repository_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh_repository()
            except Exception:  # noqa: BLE001
                log.exception("archive health: reading the repository failed")
            self._stop.wait(self.cfg.repository_interval)

    def start(self) -> "Monitor":
        threading.Thread(target=self._loop, name="archive-health", daemon=True).start()
        if self.reads_repository:  # pgbackrest info can take minutes with S3 down: not in the sampler
            threading.Thread(target=self._repository_loop, name="archive-health-repo", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()


def archiver_query(params: Mapping[str, Any]) -> Callable[[], Archiver | None]:
    """A query function on its own connection to the local postmaster."""
    from howdah.pg.query import LocalDb

    db = LocalDb({**params, "application_name": "howdah-archive-health"})

    def query() -> Archiver | None:
        try:  # a connection per sample: no backend held between samples
            rows = db.execute(ARCHIVER_SQL)
        finally:
            db.close()
        if not rows:
            return None
        r = rows[0]
        return Archiver(int(r[0] or 0), r[1], r[2], int(r[3] or 0), r[4], r[5], str(r[6]), bool(r[7]),
                        int(r[8] or 0), int(r[9] or 0))
    return query


_current: Monitor | None = None


def install(monitor: Monitor | None) -> None:
    """Make `monitor` the one /metrics reads."""
    global _current
    _current = monitor


def current() -> Health | None:
    return _current.health if _current is not None else None


def start(cfg: ArchiveConfig, data_dir: Path, params: Mapping[str, Any]) -> Monitor:
    """Start the thread and install it for /metrics."""
    monitor = Monitor(cfg, data_dir, archiver_query(params)).start()
    install(monitor)
    return monitor
