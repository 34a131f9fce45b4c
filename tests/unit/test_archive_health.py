"""Archive health (howdah.agent.archive_health) and its /metrics: failing detection, the WARNING
after the threshold and the recovery line, rates and time to full, the repository's size and the
newest backup's age.  The query, clock and pgbackrest calls are injected; the data directory is
a real temporary one."""
from __future__ import annotations

import json
import logging
import math
import subprocess
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from howdah.agent import archive_health as ah
from howdah.api.metrics import render_metrics
from howdah.core.status import NodeStatus

SEG = 16 * 1024 * 1024
WAL1 = "000000010000000000000003"


def archiver(**kw: Any) -> ah.Archiver:
    base: dict[str, Any] = dict(archived_count=3, last_archived_wal=WAL1, last_archived_time=1000.0,
                                failed_count=0, last_failed_wal=None, last_failed_time=None, archive_mode="on",
                                in_recovery=False, wal_lsn=4 * SEG, segment_size=SEG)
    base.update(kw)
    return ah.Archiver(**base)


def test_segment_end_lsn() -> None:
    assert ah.segment_end_lsn(WAL1, SEG) == 4 * SEG
    assert ah.segment_end_lsn("00000002000000010000000A", SEG) == (1 << 32) + 11 * SEG
    assert ah.segment_end_lsn("000000010000000000000003.partial", SEG) == 4 * SEG
    assert ah.segment_end_lsn("00000002.history", SEG) is None
    assert ah.segment_end_lsn(None, SEG) is None


def test_wal_timeline() -> None:
    assert ah.wal_timeline(WAL1) == 1 and ah.wal_timeline("0000000A.history") == 10
    assert ah.wal_timeline(None) == 0 and ah.wal_timeline("garbage!") == 0


def test_failing_and_active() -> None:
    assert not archiver().failing
    assert archiver(failed_count=2, last_failed_time=1001.0).failing
    assert not archiver(failed_count=2, last_failed_time=999.0).failing, "archived since the failure"
    assert archiver(failed_count=1, last_failed_time=5.0, last_archived_time=None, archived_count=0).failing
    assert not archiver(in_recovery=True).active and archiver(in_recovery=True, archive_mode="always").active
    assert not archiver(failed_count=2, last_failed_time=1001.0, in_recovery=True).failing, "a replica does not archive"
    assert not archiver(archive_mode="off").active


def test_failing_since_keeps_the_streak_start_and_the_oldest_waiting_segment() -> None:
    failing = archiver(failed_count=2, last_failed_time=1100.0)
    assert ah.failing_since(failing, None, None) == 1100.0
    assert ah.failing_since(failing, 1050.0, None) == 1050.0
    assert ah.failing_since(failing, None, 1020.0) == 1020.0
    assert ah.failing_since(archiver(), 1050.0, 1020.0) is None


def test_rate_window() -> None:
    samples: deque[tuple[float, float]] = deque()
    for t in range(0, 100, 10):
        ah.add_sample(samples, float(t), 1000.0 + 5 * t, window=30)
    assert samples[0][0] >= 60 and ah.rate(samples) == pytest.approx(5.0)
    ah.add_sample(samples, 100.0, 10.0, 30, monotonic_values=True)
    assert list(samples) == [(100.0, 10.0)] and ah.rate(samples) == 0.0


def test_config_section() -> None:
    assert ah.ArchiveConfig.from_raw(None) == ah.ArchiveConfig()
    cfg = ah.ArchiveConfig.from_raw({"interval": 2, "warn_after": 30, "stanza": "demo", "pgbackrest_config": "/c"})
    assert cfg.interval == 2.0 and cfg.warn_after == 30.0 and cfg.stanza == "demo"
    with pytest.raises(ah.ArchiveConfigError, match=r"archive_health.warn_after: 'soon'"):
        ah.ArchiveConfig.from_raw({"warn_after": "soon"})
    with pytest.raises(ah.ArchiveConfigError, match=r"archive_health.intervall"):
        ah.ArchiveConfig.from_raw({"intervall": 3})
    with pytest.raises(ah.ArchiveConfigError, match="must be a mapping"):
        ah.ArchiveConfig.from_raw([1])


class Clock:
    def __init__(self) -> None:
        self.now = 2000.0

    def __call__(self) -> float:
        return self.now


def datadir(tmp_path: Path, ready: list[str]) -> Path:
    status = tmp_path / "pg_wal" / "archive_status"
    status.mkdir(parents=True)
    for name in ready:
        (status / f"{name}.ready").touch()
    return tmp_path


def test_monitor_warns_after_the_threshold_repeats_and_says_when_it_recovers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    row = {"a": archiver(last_archived_time=1990.0)}
    data = datadir(tmp_path, [])
    m = ah.Monitor(ah.ArchiveConfig(warn_after=60), data, lambda: row["a"], clock)
    caplog.set_level(logging.INFO, logger="howdah.archive")
    assert m.sample().failing_since is None
    row["a"] = archiver(last_archived_time=1990.0, failed_count=3, last_failed_time=2005.0,
                        last_failed_wal="000000010000000000000004")
    (data / "pg_wal" / "archive_status" / "000000010000000000000004.ready").touch()
    clock.now = 2010.0
    h = m.sample()
    assert h.failing_since is not None and h.failing_since <= 2005.0 and h.pending_segments == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "not yet past the threshold"
    clock.now = 2070.0
    row["a"] = replace_failed(row["a"], 2069.0)
    m.sample()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "archiving has been failing for" in warnings[0]
    assert "000000010000000000000004" in warnings[0] and "kept until archived" in warnings[0]
    clock.now = 2100.0
    m.sample()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1, "repeated only every warn_after"
    clock.now = 2131.0
    m.sample()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    (data / "pg_wal" / "archive_status" / "000000010000000000000004.ready").rename(
        data / "pg_wal" / "archive_status" / "000000010000000000000004.done")
    row["a"] = archiver(last_archived_wal="000000010000000000000004", last_archived_time=2135.0, failed_count=9,
                        last_failed_time=2130.0)
    clock.now = 2140.0
    h = m.sample()
    assert h.failing_since is None and h.pending_segments == 0 and h.last_archived_lsn == 5 * SEG
    assert any("archiving recovered after failing for" in r.getMessage() for r in caplog.records)


def replace_failed(a: ah.Archiver, t: float) -> ah.Archiver:
    from dataclasses import replace
    return replace(a, failed_count=a.failed_count + 3, last_failed_time=t)


def test_postgres_down_mid_failure_keeps_the_state_and_says_nothing(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    row: dict[str, ah.Archiver | None] = {"a": archiver(failed_count=2, last_failed_time=1990.0)}

    def query() -> ah.Archiver | None:
        if row["a"] is None:
            raise OSError("connection refused")
        return row["a"]
    m = ah.Monitor(ah.ArchiveConfig(warn_after=5), datadir(tmp_path, []), query, clock)
    caplog.set_level(logging.INFO, logger="howdah.archive")
    m.sample()
    row["a"] = None
    clock.now += 100
    h = m.sample()
    assert h.archiver is None and h.failing_since == 1990.0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1, "only the one before"


def test_a_segment_waiting_too_long_without_failures_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import os

    data = datadir(tmp_path, ["000000010000000000000009"])
    os.utime(data / "pg_wal/archive_status/000000010000000000000009.ready", (100.0, 100.0))
    clock = Clock()
    m = ah.Monitor(ah.ArchiveConfig(warn_after=60), data, lambda: archiver(), clock)
    caplog.set_level(logging.INFO, logger="howdah.archive")
    m.sample()
    assert any("archiving is behind" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def fake_run(calls: list[list[str]], info: Any, sizes: dict[str, int], fail: bool = False) -> ah.Run:
    def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        if fail:
            return subprocess.CompletedProcess(argv, 1, "ERROR: [039]: HTTP request failed")
        if "info" in argv:
            return subprocess.CompletedProcess(argv, 0, json.dumps(info))
        where = argv[-1]
        listing = {".": {"type": "path"}, "f": {"type": "file", "size": sizes[where]}}
        return subprocess.CompletedProcess(argv, 0, json.dumps(listing))
    return run


INFO = [{"name": "demo", "backup": [{"label": "a", "timestamp": {"start": 10, "stop": 1500}},
                                    {"label": "b", "timestamp": {"start": 1600, "stop": 1900}},
                                    {"label": "bad", "error": True, "timestamp": {"start": 1950, "stop": 1960}}]}]


def test_repository_read_apart_from_the_samples(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    clock = Clock()
    cfg = ah.ArchiveConfig(repository_interval=300, pgbackrest_config="/run/howdah/pgbackrest.conf", stanza="demo")
    m = ah.Monitor(cfg, datadir(tmp_path, []), lambda: archiver(), clock,
                   fake_run(calls, INFO, {"archive/demo": 1000, "backup/demo": 234}))
    assert m.reads_repository and m.sample().repository is None, "not read by the sampler itself"
    m.refresh_repository()
    h = m.sample()
    assert h.repository is not None and h.repository.ok and h.repository.backups == 2
    assert h.repository.newest_stop == 1900 and h.repository.size_bytes == 1234
    assert calls[0][:3] == ["pgbackrest", "--config=/run/howdah/pgbackrest.conf", "--stanza=demo"]
    assert len(calls) == 3 and calls[1][-1] == "archive/demo" and calls[2][-1] == "backup/demo"
    m.run = fake_run(calls, INFO, {}, fail=True)
    m.refresh_repository()
    h = m.sample()
    assert h.repository is not None and not h.repository.ok and "HTTP request failed" in h.repository.error
    assert not ah.Monitor(ah.ArchiveConfig(), tmp_path, lambda: None).reads_repository


def metrics_text(h: ah.Health, now: float) -> dict[str, str]:
    s = NodeStatus(name="n1", scope="demo", state="running", role="primary", pg_running=True)
    text = render_metrics(lambda: s, lambda: 1.0, get_health=lambda: h, wall_clock=lambda: now).decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = value
    return out


def test_metrics_expose_archive_backup_repository_and_volume() -> None:
    a = archiver(failed_count=4, last_failed_time=2050.0, last_failed_wal="000000010000000000000004")
    repo = ah.Repository(ok=True, checked_at=2000.0, backups=2, newest_stop=1900.0, size_bytes=1234)
    h = ah.Health(sampled_at=2090.0, archiver=a, last_archived_lsn=4 * SEG, failing_since=2040.0,
                  pending_segments=2, oldest_pending=2030.0, volume_size=10 * 2**30, volume_available=2**30,
                  volume_growth=2**20, wal_rate=2**20, repository=repo, keeper={"consecutive_failures": 1})
    m = metrics_text(h, 2100.0)
    lab = '{name="n1",scope="demo"}'
    expect = {"howdah_archive_active": "1.0", "howdah_archive_failed_count": "4.0",
              "howdah_archive_archived_count": "3.0", "howdah_archive_failing": "1.0",
              "howdah_archive_failing_seconds": "60.0", "howdah_archive_pending_segments": "2.0",
              "howdah_archive_pending_oldest_seconds": "70.0", "howdah_archive_last_archived_lsn": f"{4.0 * SEG}",
              "howdah_archive_last_archived_time": "1000.0", "howdah_backup_count": "2.0",
              "howdah_backup_newest_age_seconds": "200.0", "howdah_repository_size_bytes": "1234.0",
              "howdah_repository_ok": "1.0", "howdah_backup_consecutive_failures": "1.0",
              "howdah_volume_full_seconds": "1024.0", "howdah_wal_bytes_per_second": f"{float(2**20)}"}
    for name, value in expect.items():
        assert float(m[name + lab]) == float(value), (name, m.get(name + lab))
    assert m["howdah_archive_last_archived_timeline" + lab] == "1.0"
    assert m["howdah_archive_last_failed_timeline" + lab] == "1.0"
    assert float(m["howdah_archive_last_failed_lsn" + lab]) == 5.0 * SEG
    assert not [k for k in m if "wal=" in k], "no label per WAL file (a series per segment)"
    calm = metrics_text(ah.Health(sampled_at=1.0, volume_size=10, volume_available=5), 2100.0)
    assert calm["howdah_volume_full_seconds" + lab] == "+Inf" and calm["howdah_archive_active" + lab] == "0.0"
    assert calm["howdah_backup_newest_age_seconds" + lab] == "-1.0" and calm["howdah_repository_ok" + lab] == "-1.0"
    assert math.isinf(ah.Health(volume_size=1).seconds_to_full)


def test_no_monitor_no_archive_metrics() -> None:
    s = NodeStatus(name="n1", scope="demo", state="running", role="primary", pg_running=True)
    assert b"howdah_archive" not in render_metrics(lambda: s, lambda: 1.0, get_health=lambda: None)
