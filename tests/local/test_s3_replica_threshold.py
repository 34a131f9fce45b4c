"""Replicas from the newest S3 backup with Spilo's thresholds (tests/harness/s3.py, real
pgBackRest over TLS): REPLICA_METHODS=wal_e,basebackup and WALE_BACKUP_THRESHOLD_MEGABYTES /
WALE_BACKUP_THRESHOLD_PERCENTAGE as the entrypoint renders them (``postgresql.wal_e``:
howdah-restore-replica with threshold_megabytes and threshold_backup_size_percentage).  With
more WAL written since the backup than the threshold the method declines and the agent falls
back to basebackup; within the thresholds the replica is restored from the backup.  Both
replicas end up streaming with every row."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

pytest.importorskip("moto")
pytest.importorskip("cryptography")

from harness import LocalCluster  # noqa: E402
from harness.config import REPO  # noqa: E402
from harness.node import AgentNode  # noqa: E402
from harness.s3 import Rendered, S3Server, python  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.local


def replica_config(s3: S3Server, node: AgentNode, where: Path, **env: str) -> dict[str, Any]:
    """create_replica_methods and wal_e as the entrypoint renders them for `node` (the image's
    /usr/local/bin/howdah-restore-replica is scripts/restore_replica.py here)."""
    conf = Rendered(s3, "harness", REPLICA_METHODS="wal_e,basebackup", **env)
    try:
        pg = yaml.safe_load(conf.files(node)["howdah.yml"])["postgresql"]
        own = conf.render(node)
        text = own.read_text()
    finally:
        conf.close()
    path = where / f"pgbackrest-replica-{node.name}.conf"
    path.write_text(text)
    path.chmod(0o644)
    wal_e = dict(pg["wal_e"])
    assert wal_e["command"].startswith("/usr/local/bin/howdah-restore-replica --config=")
    wal_e["command"] = f"{python()} {REPO / 'scripts/restore_replica.py'} --config={path} --stanza=harness"
    return {"create_replica_methods": pg["create_replica_methods"], "wal_e": wal_e}


def test_replica_from_backup_within_thresholds_and_basebackup_beyond(
        s3: S3Server, local_cluster: Callable[..., LocalCluster]) -> None:
    conf = Rendered(s3, "harness")
    try:
        c = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3, start_agents=False, extra=conf.archiving())
        n1, n2, n3 = c.nodes
        c.start_agents([n1])
        assert c.wait_leader(180) is n1
        wait_for("n1 running as primary", lambda: n1.api("/patroni")[1].get("state") == "running", 60)
        n1.sql("CREATE TABLE kept (v text)")
        n1.sql("INSERT INTO kept VALUES ('in the backup')")
        assert "taking a full backup" in conf.keeper(n1).stdout
        # about 3 segments of WAL past the backup's end
        n1.sql("CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 150000) g")
        n1.sql("INSERT INTO kept VALUES ('after the backup')")
        behind = n1.sql("SELECT pg_current_wal_lsn() - %s::pg_lsn", (conf.backups()[-1]["lsn"]["stop"],))[0][0]
        assert behind > 20 * 2**20, f"only {behind} bytes of WAL since the backup"

        far = replica_config(s3, n2, conf.dir, WALE_BACKUP_THRESHOLD_MEGABYTES="8")
        assert far["create_replica_methods"] == ["wal_e", "basebackup"]
        assert far["wal_e"]["threshold_megabytes"] == 8 and far["wal_e"]["threshold_backup_size_percentage"] == 30
        near = replica_config(s3, n3, conf.dir, WALE_BACKUP_THRESHOLD_MEGABYTES="1024",
                              WALE_BACKUP_THRESHOLD_PERCENTAGE="10000")
        n2.config["postgresql"].update(far)
        n3.config["postgresql"].update(near)
        c.start_agents([n2, n3])
        wait_for("n2 and n3 streaming", lambda: {"n2", "n3"} <= set(c.streaming(n1)), 420)

        log2 = n2.log_path.read_text(errors="replace")
        assert "MB of WAL behind the leader (threshold_megabytes 8)" in log2, log2[-3000:]
        assert "declining: the next replica method takes over" in log2
        assert "basebackup: exited with 0" in log2 and "replica created with method wal_e" not in log2
        log3 = n3.log_path.read_text(errors="replace")
        assert "replica created with method wal_e" in log3 and "declining" not in log3
        n1.sql("INSERT INTO kept VALUES ('streamed')")
        for node in (n2, n3):
            wait_for(f"every row on {node.name}", lambda n=node: n.sql("SELECT count(*) FROM kept") == [(3,)], 90)
    finally:
        conf.close()
