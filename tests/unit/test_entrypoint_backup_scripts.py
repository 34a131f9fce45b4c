"""The decisions inside the image's pgBackRest scripts, without a repository."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from harness.scripts import load_script


restore = load_script("scripts/restore_replica.py")
clone = load_script("bootstrap/clone_with_pgbackrest.py")
MiB = 1024 * 1024


def backup(label: str, stop_lsn: str, stop: int, size: int = 100 * MiB, error: bool = False) -> dict[str, Any]:
    return {"label": label, "lsn": {"start": "0/0", "stop": stop_lsn}, "timestamp": {"start": stop - 5, "stop": stop},
            "info": {"size": size}, "error": error}


INFO = [{"name": "other", "backup": [backup("o", "9/0", 999)]},
        {"name": "prod", "backup": [backup("a", "0/1000000", 100), backup("b", "1/0", 200),
                                    backup("c", "2/0", 300, error=True)]}]


def test_parse_lsn() -> None:
    assert restore.parse_lsn("0/0") == 0
    assert restore.parse_lsn("1/10") == (1 << 32) + 16


def test_newest_good_backup_of_the_stanza() -> None:
    assert restore.newest_backup(INFO, "prod")["label"] == "b"
    assert restore.newest_backup(INFO, "missing") is None
    assert restore.newest_backup([{"name": "prod", "backup": []}], "prod") is None


@pytest.mark.parametrize("behind_mb,size_mb,mb,pct,ok,words", [
    (10, 100, 1024, 30, True, "restoring it"),
    (2000, 100000, 1024, 30, False, "threshold_megabytes 1024"),
    (40, 100, 1024, 30, False, "more than 30% of its 100 MB"),
    (29, 100, 1024, 30, True, "29 MB of WAL behind"),
    (0, 0, 0, 0, True, "restoring it"),
])
def test_restore_or_decline(behind_mb: int, size_mb: int, mb: int, pct: int, ok: bool, words: str) -> None:
    b = backup("x", "1/0", 1, size=size_mb * MiB)
    decided, why = restore.decide(b, (1 << 32) + behind_mb * MiB, mb, pct)
    assert decided is ok and words in why


def test_no_backup_declines_and_no_leader_restores() -> None:
    assert restore.decide(None, 123, 1, 1) == (False, "no backup in the repository")
    assert restore.decide(backup("x", "1/0", 1), None, 1, 1)[0] is True


def test_agent_keys_with_underscores_are_understood() -> None:
    args = restore.parse(["--scope=s", "--datadir=/d", "--connstring=", "--threshold_megabytes=7",
                          "--threshold_backup_size_percentage=9", "--envdir=/x"])
    assert (args.threshold_megabytes, args.threshold_backup_size_percentage, args.stanza) == (7, 9, "s")


def test_clone_picks_the_newest_backup_before_the_target() -> None:
    at = lambda ts: datetime.fromtimestamp(ts, timezone.utc)  # noqa: E731
    assert clone.choose_backup(INFO, "prod", None)["label"] == "b"
    assert clone.choose_backup(INFO, "prod", at(250))["label"] == "b"
    assert clone.choose_backup(INFO, "prod", at(150))["label"] == "a"
    assert clone.choose_backup(INFO, "prod", at(100)) is None, "a backup must finish before the target"
    assert clone.choose_backup(INFO, "nope", None) is None
