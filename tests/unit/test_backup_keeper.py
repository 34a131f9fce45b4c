"""scripts/backup_keeper.py: the cron schedule and the decisions of one round (who backs up, when,
retry after a failure, retention after each backup), with pgBackRest and the agent replaced by
recordings.  The real thing runs in tests/local/test_s3_schedule.py."""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from harness.scripts import load_script


keeper = load_script("scripts/backup_keeper.py")
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("expr,now,expected", [
    ("00 01 * * *", "2026-05-01 00:30", "2026-05-01 01:00"),   # Spilo's default: daily at 01:00 UTC
    ("00 01 * * *", "2026-05-01 01:00", "2026-05-02 01:00"),   # strictly after
    ("* * * * *", "2026-05-01 10:15:30", "2026-05-01 10:16"),
    ("*/15 * * * *", "2026-05-01 10:16", "2026-05-01 10:30"),
    ("30 2 * * 0", "2026-05-01 00:00", "2026-05-03 02:30"),     # 2026-05-03 is a Sunday
    ("30 2 * * 7", "2026-05-01 00:00", "2026-05-03 02:30"),
    ("0 0 1 * *", "2026-05-01 00:00", "2026-06-01 00:00"),
    ("0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"),
    ("0 6-8/2 * * 1-5", "2026-05-01 07:00", "2026-05-01 08:00"),
    ("0 0 13 * 5", "2026-05-02 00:00", "2026-05-08 00:00"),     # day 13 OR a Friday, as cron
])
def test_cron_next_after(expr: str, now: str, expected: str) -> None:
    assert keeper.Cron(expr).next_after(at(now)) == at(expected)


@pytest.mark.parametrize("expr", ["", "* * * *", "60 * * * *", "* 24 * * *", "a * * * *", "*/0 * * * *",
                                  "5-1 * * * *"])
def test_bad_cron_is_refused(expr: str) -> None:
    with pytest.raises(keeper.CronError):
        keeper.Cron(expr)


class Fake:
    """The agent's role and pgBackRest's answers, recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, backups: int = 1) -> None:
        self.primary, self.fail_backup, self.calls = True, False, []  # type: ignore[var-annotated]
        self.backups = [{"label": f"b{i}", "timestamp": {"stop": 1000 + i}} for i in range(backups)]
        monkeypatch.setattr(keeper, "is_primary", lambda args: self.primary)
        monkeypatch.setattr(keeper, "pgbackrest", self.run)

    def run(self, args: Any, *command: str) -> subprocess.CompletedProcess[str]:
        self.calls.append(command)
        if command[0] == "info":
            return subprocess.CompletedProcess([], 0, json.dumps(
                [{"name": args.stanza, "status": {"code": 0}, "backup": self.backups}]))
        if command[0] == "backup":
            if self.fail_backup:
                return subprocess.CompletedProcess([], 1, "ERROR: [039]: S3 unreachable")
            self.backups.append({"label": f"b{len(self.backups)}", "timestamp": {"stop": 2000 + len(self.backups)}})
        return subprocess.CompletedProcess([], 0, "")

    def taken(self) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] == "backup"]


def make(tmp_path: Path, *extra: str) -> Any:
    return keeper.Keeper(keeper.parse(["--config=/c", "--stanza=demo", f"--status-file={tmp_path / 's.json'}",
                                       "--retry-interval=0", *extra]))


def test_schedule_on_the_primary_then_retention(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = Fake(monkeypatch)
    k = make(tmp_path, "--schedule=00 01 * * *", "--type=diff", "--retain-days=30")
    assert k.round(at("2026-05-01 00:30")) and fake.taken() == [], "not due yet"
    assert k.round(at("2026-05-01 01:00:20"))
    assert fake.taken() == [("backup", "--type=diff")]
    expires = [c for c in fake.calls if c[0] == "expire"]
    assert expires == [("expire",), ("expire", "--repo1-retention-full-type=time", "--repo1-retention-full=30")]
    assert k.next_due == at("2026-05-02 01:00")
    status = json.loads((tmp_path / "s.json").read_text())
    assert status["consecutive_failures"] == 0 and status["last_success_type"] == "diff"
    assert status["backups_in_repository"] == 2 and status["newest_backup_stop"] == 2001
    assert k.round(at("2026-05-01 12:00")) and len(fake.taken()) == 1


def test_a_replica_never_backs_up_and_the_new_primary_takes_the_next_slot(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    fake = Fake(monkeypatch)
    fake.primary = False
    k = make(tmp_path, "--schedule=00 01 * * *")
    k.round(at("2026-05-01 00:00"))
    assert k.round(at("2026-05-01 01:00")) and fake.taken() == [] and fake.calls == []
    fake.primary = True  # switchover: this node is the primary now
    assert k.round(at("2026-05-01 09:00")) and fake.taken() == [], "a slot missed as a replica is not made up"
    k.round(at("2026-05-02 01:00"))
    assert fake.taken() == [("backup", "--type=full")]


def test_a_failed_backup_is_retried_and_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = Fake(monkeypatch)
    k = make(tmp_path, "--schedule=00 01 * * *")
    k.round(at("2026-05-01 00:00"))
    fake.fail_backup = True
    assert not k.round(at("2026-05-01 01:00"))
    assert not k.round(at("2026-05-01 01:01")), "retried while it fails"
    status = json.loads((tmp_path / "s.json").read_text())
    assert status["consecutive_failures"] == 2 and "S3 unreachable" in status["last_failure_reason"]
    fake.fail_backup = False
    assert k.round(at("2026-05-01 01:02"))
    assert len(fake.taken()) == 3 and json.loads((tmp_path / "s.json").read_text())["consecutive_failures"] == 0
    assert k.round(at("2026-05-01 01:03")) and len(fake.taken()) == 3, "done until the next slot"


def test_first_full_backup_without_schedule_and_direct_trigger(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    fake = Fake(monkeypatch, backups=0)
    k = make(tmp_path)
    assert k.round() and fake.taken() == [("backup", "--type=full")]
    assert k.round() and len(fake.taken()) == 1, "one first backup, no schedule"
    assert make(tmp_path, "--type=incr").round(force=True) and fake.taken()[-1] == ("backup", "--type=incr")


def test_bad_schedule_on_the_command_line_is_one_error() -> None:
    with pytest.raises(SystemExit):
        keeper.parse(["--config=/c", "--stanza=demo", "--schedule=61 * * * *"])
