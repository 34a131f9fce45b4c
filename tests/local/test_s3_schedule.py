"""Scheduled backups to a real S3 server over TLS (tests/harness/s3.py), driven through the
backup keeper's direct trigger (``--once --now``: the scheduled path without waiting for the
clock): only the primary backs up, BACKUP_NUM_TO_RETAIN (repo1-retention-full, rendered by the
entrypoint) prunes old backups from the bucket after each backup, a switchover moves the duty to
the new primary, and a backup that fails while S3 is unreachable is reported in the status file
and succeeds on the retry once S3 is back."""
from __future__ import annotations

from typing import Callable

import pytest

pytest.importorskip("moto")
pytest.importorskip("cryptography")

from harness import LocalCluster  # noqa: E402
from harness.s3 import BUCKET, Rendered, S3Server  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.local
FAST_FAIL = {"PGBACKREST_IO_TIMEOUT": "3", "PGBACKREST_DB_TIMEOUT": "20"}  # S3 down: fail in seconds, not minutes


def test_scheduled_backups_retention_switchover_and_failure(s3: S3Server,
                                                           local_cluster: Callable[..., LocalCluster]) -> None:
    conf = Rendered(s3, "harness", BACKUP_NUM_TO_RETAIN="2")
    try:
        assert "repo1-retention-full=2" in conf.shared.read_text().splitlines()
        c = local_cluster(2, ttl=8, loop_wait=1, retry_timeout=3, extra=conf.archiving())
        n1 = c.wait_leader(180)
        c.wait_streaming(1, 300)
        n2 = next(n for n in c.nodes if n is not n1)
        wait_for("the primary running", lambda: n1.api("/patroni")[1].get("state") == "running", 60)

        assert "taking a full backup" in conf.keeper(n1).stdout, "the first full backup"
        conf.keeper(n1, "--now", "--type=diff")
        assert [b["type"] for b in conf.backups()] == ["full", "diff"]
        first = conf.backups()[0]["label"]
        assert any(f"/{first}/" in k for k in s3.keys(BUCKET, "harness/backup/"))
        conf.keeper(n1, "--now")
        last = conf.keeper(n1, "--now")
        backups = conf.backups()
        assert [b["type"] for b in backups] == ["full", "full"], "2 full kept, the diff went with its full"
        assert first not in [b["label"] for b in backups]
        assert "retention applied: 2 backup(s) kept" in last.stdout
        assert not any(f"/{first}/" in k for k in s3.keys(BUCKET, "harness/backup/")), "pruned from the bucket"
        assert conf.status()["consecutive_failures"] == 0 and conf.status()["backups_in_repository"] == 2

        replica = conf.keeper(n2, "--now")
        assert "taking" not in replica.stdout and [b["label"] for b in conf.backups()] == [b["label"] for b in backups]

        # a switchover moves the schedule to the new primary
        client = c.dcs_client()
        assert client.write_failover({"leader": n1.name, "member": n2.name})
        assert c.wait_leader(120, exclude=[n1.name]) is n2
        wait_for("n2 running as primary", lambda: n2.api("/patroni")[1].get("state") == "running"
                 and n2.api("/patroni")[1].get("role") == "primary", 120)
        wait_for("n1 back as a replica", lambda: n1.role() == "replica", 180)
        assert "taking" not in conf.keeper(n1, "--now").stdout
        moved = conf.keeper(n2, "--now")
        assert "scheduled: taking a full backup" in moved.stdout and "done in" in moved.stdout
        after = conf.backups()
        assert len(after) == 2 and after[-1]["label"] not in [b["label"] for b in backups]

        # S3 unreachable: the backup fails, is reported, and the retry succeeds once S3 is back
        s3.pause()
        try:
            failed = conf.keeper(n2, "--now", check=False, env=FAST_FAIL)
        finally:
            s3.resume()
        assert failed.returncode == 1 and "retrying in" in failed.stdout, failed.stdout
        status = conf.status()
        assert status["consecutive_failures"] == 1 and status["last_failure_reason"]
        retried = conf.keeper(n2, "--now")
        assert "done in" in retried.stdout and conf.status()["consecutive_failures"] == 0
        assert len(conf.backups()) == 2
    finally:
        conf.close()
