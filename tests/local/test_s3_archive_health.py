"""Archive health against a real S3 server over TLS (tests/harness/s3.py): the agent's
archive-health thread (configured by the ``archive_health`` section the entrypoint renders from
ARCHIVE_CHECK_INTERVAL, ARCHIVE_WARNING_AFTER, REPOSITORY_CHECK_INTERVAL) puts the archiver, the
newest backup, the repository's size and the volume in /metrics.  With the bucket unreachable
(the TLS front stopped) archive_command fails: /metrics says so, the log gets the WARNING once
the failure outlasts the threshold, and the segments that could not be archived stay in pg_wal
through checkpoints (wal_keep_size 0).  Once the bucket is back the same segments reach it,
/metrics clears and the log says archiving recovered."""
from __future__ import annotations

import math
import re
import urllib.request
from pathlib import Path
from typing import Callable

import pytest
import yaml

pytest.importorskip("moto")
pytest.importorskip("cryptography")

from howdah.agent.archive_health import segment_end_lsn  # noqa: E402
from harness import LocalCluster  # noqa: E402
from harness.node import AgentNode  # noqa: E402
from harness.s3 import BUCKET, Rendered, S3Server  # noqa: E402
from harness.waiting import wait_for  # noqa: E402
from harness.web import basic_auth  # noqa: E402

pytestmark = pytest.mark.local
WARN_AFTER = 10
# archive-push gives up in seconds (not a minute) while the S3 endpoint refuses connections
FAST_FAIL = "--io-timeout=3 --db-timeout=20"


def metrics(node: AgentNode) -> dict[str, str]:
    """{name or name{wal=...}: value} of this node's /metrics (scope/name labels dropped)."""
    req = urllib.request.Request(node.api_url + "/metrics",
                                 headers=basic_auth(*node.api_auth) if node.api_auth else {})
    with urllib.request.urlopen(req, timeout=10, context=node.tls_context()) as resp:
        text = resp.read().decode()
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("howdah_") or line.startswith("patroni_"):
            key, _, value = line.rpartition(" ")
            name, _, labels = key.partition("{")
            wal = re.search(r'wal="([^"]*)"', labels)
            out[name + (f"[{wal.group(1)}]" if wal else "")] = value
    return out


def value(node: AgentNode, name: str) -> float:
    try:
        return float(metrics(node).get(name, "nan"))
    except OSError:
        return math.nan


def write_segments(node: AgentNode, count: int) -> list[str]:
    """Fill and close `count` WAL segments; their names."""
    names = []
    for _ in range(count):
        node.sql("INSERT INTO filler SELECT g FROM generate_series(1, 2000) g")
        names.append(str(node.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]))
        node.sql("SELECT pg_switch_wal()")
    return names


def test_archive_failure_is_visible_warned_kept_and_recovers(
        s3: S3Server, local_cluster: Callable[..., LocalCluster]) -> None:
    conf = Rendered(s3, "harness", ARCHIVE_CHECK_INTERVAL="1", ARCHIVE_WARNING_AFTER=str(WARN_AFTER),
                    REPOSITORY_CHECK_INTERVAL="3")
    try:
        extra = conf.archiving()
        command = extra["bootstrap"]["dcs"]["postgresql"]["parameters"]["archive_command"]
        extra["bootstrap"]["dcs"]["postgresql"]["parameters"]["archive_command"] = command.replace(
            " archive-push", f" {FAST_FAIL} archive-push")
        extra["postgresql"]["parameters"] = {"wal_keep_size": "0", "min_wal_size": "32MB", "max_wal_size": "64MB"}
        c = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, start_agents=False, extra=extra)
        n1 = c.nodes[0]
        health = yaml.safe_load(conf.files(n1)["howdah.yml"])["archive_health"]
        assert health["interval"] == 1 and health["warn_after"] == WARN_AFTER and health["stanza"] == "harness"
        health.update(pgbackrest_config=str(conf.render(n1)), status_file=str(Path(conf.dir) / "status.json"))
        n1.config["archive_health"] = health
        c.start_agents([n1])
        assert c.wait_leader(180) is n1
        wait_for("n1 running as primary", lambda: n1.api("/patroni")[1].get("state") == "running", 60)
        assert "taking a full backup" in conf.keeper(n1).stdout
        n1.sql("CREATE TABLE filler (v int)")

        # healthy: the last archived WAL, a backup, the repository's size, the volume
        healthy = write_segments(n1, 1)[-1]
        end = segment_end_lsn(healthy, 16 * 2**20)
        wait_for("the segment archived, seen in /metrics",
                 lambda: value(n1, "howdah_archive_last_archived_lsn") >= float(end or 0), 90)
        wait_for("the backup in /metrics", lambda: value(n1, "howdah_backup_count") == 1.0, 60)
        m = metrics(n1)
        assert m["howdah_archive_active"] == "1.0" and m["howdah_archive_failing"] == "0.0", m
        assert m["howdah_archive_last_archived_timeline"] == "1.0"
        assert float(m["howdah_repository_size_bytes"]) > 1_000_000, "a base backup and WAL are stored"
        assert 0 <= float(m["howdah_backup_newest_age_seconds"]) < 3600
        assert float(m["howdah_volume_available_bytes"]) > 0 and float(m["howdah_volume_size_bytes"]) > 0
        assert float(m["howdah_volume_full_seconds"]) > 0  # a figure or +Inf: the shared disk's own traffic
        failures_before = float(m["howdah_archive_failed_count"])

        # the bucket unreachable: failures counted, the WARNING after the threshold, WAL kept
        s3.pause()
        try:
            stuck = write_segments(n1, 4)
            wait_for("archiving failing in /metrics", lambda: value(n1, "howdah_archive_failing") == 1.0, 120)
            wait_for("the WARNING in the log", lambda: "archiving has been failing for" in n1.log_path.read_text(
                errors="replace"), 60 + 4 * WARN_AFTER)
            m = metrics(n1)
            assert float(m["howdah_archive_failed_count"]) > failures_before
            assert float(m["howdah_archive_last_failed_lsn"]) == float(segment_end_lsn(stuck[0], 16 * 2**20) or -1)
            assert float(m["howdah_archive_failing_seconds"]) >= WARN_AFTER
            assert float(m["howdah_archive_pending_segments"]) >= len(stuck)
            wait_for("the unreachable repository in /metrics", lambda: value(n1, "howdah_repository_ok") == 0.0, 300)
            warning = next(line for line in n1.log_path.read_text(errors="replace").splitlines()
                           if "archiving has been failing for" in line)
            assert "WARNING" in warning and "kept until archived" in warning, warning
            n1.sql("CHECKPOINT")
            write_segments(n1, 2)
            n1.sql("CHECKPOINT")
            wal = Path(n1.data_dir) / "pg_wal"
            for name in stuck:
                assert (wal / name).exists(), f"{name} could not be archived and must stay in pg_wal"
                assert (wal / "archive_status" / f"{name}.ready").exists()
        finally:
            s3.resume()

        # writable again: the same segments reach the bucket, /metrics clears, the log says so
        n1.sql("INSERT INTO filler VALUES (1)")
        n1.sql("SELECT pg_switch_wal()")  # wakes the archiver now rather than at its next retry
        wait_for("archiving recovered in /metrics", lambda: value(n1, "howdah_archive_failing") == 0.0
                 and value(n1, "howdah_archive_pending_segments") == 0.0, 180)
        keys = s3.keys(BUCKET, "harness/archive/")
        for name in stuck:
            assert any(f"/{name}-" in k for k in keys), f"{name} reached the bucket after the outage"
        wait_for("the recovery line", lambda: "archiving recovered after failing for" in n1.log_path.read_text(
            errors="replace"), 30)
        wait_for("the repository readable again", lambda: value(n1, "howdah_repository_ok") == 1.0, 60)
    finally:
        conf.close()
