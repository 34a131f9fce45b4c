"""pgBackRest to a real S3 server over TLS (tests/harness/s3.py), with the pgbackrest.conf the
entrypoint renders from Spilo's variables (WAL_S3_BUCKET, AWS_ENDPOINT=https://localhost:<port>,
AWS_CA_BUNDLE, static keys; path style by default for a custom endpoint): a 3-node cluster
archives WAL and takes a base backup (the backup keeper) into the bucket, archive-get reads a
segment back, and the two other nodes are built from that backup: the plain ``pgbackrest``
replica method and the WAL-E style ``howdah-restore-replica``."""
from __future__ import annotations

import shutil
from typing import Callable

import pytest

pytest.importorskip("moto")
pytest.importorskip("cryptography")

from harness import LocalCluster  # noqa: E402
from harness.config import REPO  # noqa: E402
from harness.s3 import BUCKET, Rendered, S3Server, python  # noqa: E402
from harness.archive import switch_and_archive  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.local


def test_cluster_archives_and_backs_up_to_s3_and_replicas_restore_from_it(
        s3: S3Server, local_cluster: Callable[..., LocalCluster]) -> None:
    conf = Rendered(s3, "harness")
    try:
        text = conf.shared.read_text()
        for line in ("repo1-type=s3", f"repo1-s3-bucket={BUCKET}", "repo1-s3-endpoint=localhost",
                     f"repo1-storage-port={s3.port}", "repo1-s3-uri-style=path", f"repo1-storage-ca-file={s3.ca_file}",
                     "repo1-path=/harness"):
            assert line in text.splitlines(), f"{line} not rendered:\n{text}"
        c = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3, start_agents=False, extra=conf.archiving())
        n1, n2, n3 = c.nodes
        c.start_agents([n1])
        assert c.wait_leader(180) is n1
        n1.sql("CREATE TABLE kept (v text)")
        n1.sql("INSERT INTO kept VALUES ('in the backup')")
        wait_for("n1 running as primary", lambda: n1.api("/patroni")[1].get("state") == "running", 60)
        first = conf.keeper(n1)
        assert "creating stanza harness" in first.stdout and "taking a full backup" in first.stdout, first.stdout
        assert [b["type"] for b in conf.backups()] == ["full"]
        keys = s3.keys(BUCKET, "harness/")
        assert any(k.startswith("harness/backup/harness/") for k in keys), keys
        n1.sql("INSERT INTO kept VALUES ('only in the archive')")
        segment = switch_and_archive(n1)
        assert any(k.startswith(f"harness/archive/harness/") and f"/{segment}-" in k
                   for k in s3.keys(BUCKET, "harness/archive/")), "the segment is in the bucket"
        fetched = conf.dir / "fetched-segment"
        conf.run(*conf.cmd(conf.shared).split(), f"--pg1-path={n1.data_dir}", "archive-get", segment, str(fetched))
        assert fetched.stat().st_size == 16 * 1024 * 1024

        # replicas from the S3 backup: the image's plain pgbackrest method and the WAL-E style one
        n2.config["postgresql"].update({"create_replica_methods": ["pgbackrest", "basebackup"], "pgbackrest": {
            "command": f"{conf.cmd(conf.render(n2))} --delta --type=standby restore",
            "keep_data": True, "no_params": True}})
        restore = (f"{python()} {REPO / 'scripts/restore_replica.py'} --config={conf.render(n3)} "
                   f"--stanza=harness")
        n3.config["postgresql"].update({"create_replica_methods": ["wal_e", "basebackup"], "wal_e": {
            "command": restore, "threshold_megabytes": 1024, "threshold_backup_size_percentage": 10000}})
        c.start_agents([n2, n3])
        wait_for("n2 and n3 streaming", lambda: {"n2", "n3"} <= set(c.streaming(n1)), 300)
        assert "replica created with method pgbackrest" in n2.log_path.read_text(errors="replace")
        assert "replica created with method wal_e" in n3.log_path.read_text(errors="replace")
        n1.sql("INSERT INTO kept VALUES ('streamed')")
        for node in (n2, n3):
            wait_for(f"all rows on {node.name}", lambda n=node: n.sql("SELECT count(*) FROM kept") == [(3,)], 60)
    finally:
        shutil.rmtree(conf.dir, ignore_errors=True)
