"""A clone from another cluster's S3 bucket with point-in-time recovery, after every node and
volume of the source is gone.  The clone's files are the entrypoint's own rendering of
CLONE_METHOD=CLONE_WITH_WALE, CLONE_SCOPE, CLONE_WAL_S3_BUCKET, CLONE_AWS_* and
CLONE_TARGET_TIME (with its time zone): the bootstrap method, its recovery_conf, and the
self-contained pgbackrest-clone.conf that reads the source's bucket with the source's keys
while the clone archives to a bucket of its own."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
import yaml

pytest.importorskip("moto")
pytest.importorskip("cryptography")

from harness import LocalCluster  # noqa: E402
from harness.config import REPO  # noqa: E402
from harness.s3 import BUCKET, Rendered, S3Server, python  # noqa: E402
from harness.archive import history_with_a_target, switch_and_archive  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

# Once failed here with "cannot execute ALTER ROLE in a read-only transaction": the agent
# created the roles as soon as its cached session said the recovery was over. The agent now
# starts such a recovery with hot_standby off (nothing can connect before the promotion, as in
# Patroni) and creates the roles only on a new session that finds the server writable.
pytestmark = [pytest.mark.local]
CLONE_BUCKET = "howdah-clone-own"


@pytest.fixture
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.create_bucket(BUCKET)
        server.create_bucket(CLONE_BUCKET)
        yield server


def clone_bootstrap(files: dict[str, str]) -> dict[str, Any]:
    """The rendered bootstrap section, with the image's script paths pointed at this tree."""
    boot: dict[str, Any] = yaml.safe_load(files["howdah.yml"])["bootstrap"]
    spec = boot[boot["method"]]
    spec["command"] = spec["command"].replace("/usr/local/bin/howdah-clone-pgbackrest",
                                              f"{python()} {REPO / 'bootstrap/clone_with_pgbackrest.py'}")
    return {"method": boot["method"], boot["method"]: spec}


def test_clone_from_another_clusters_bucket_with_pitr(s3: S3Server,
                                                      local_cluster: Callable[..., LocalCluster]) -> None:
    source_conf = Rendered(s3, "source")
    try:
        source = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, scope="source",
                               extra=source_conf.archiving())
        src = source.wait_leader(180)
        target = history_with_a_target(src, lambda: source_conf.keeper(src).stdout)
        source.close()  # every node and volume of the source is gone; only the bucket remains

        clone_env = {"WAL_S3_BUCKET": CLONE_BUCKET, "CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "source",
                     "CLONE_WAL_S3_BUCKET": BUCKET, "CLONE_AWS_ACCESS_KEY_ID": "source-key",
                     "CLONE_AWS_SECRET_ACCESS_KEY": "source-secret", "CLONE_TARGET_TIME": target}
        conf = Rendered(s3, "pitr", **clone_env)
        try:
            pitr = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, scope="pitr", start_agents=False,
                                 extra=conf.archiving())
            node = pitr.nodes[0]
            files = conf.files(node)
            source_side = files["pgbackrest-clone.conf"]
            for line in (f"repo1-s3-bucket={BUCKET}", "repo1-path=/source", "repo1-s3-key=source-key",
                         "[source]"):
                assert line in source_side.splitlines(), source_side
            assert f"repo1-s3-bucket={CLONE_BUCKET}" in files["pgbackrest.conf"].splitlines()
            (conf.dir / "pgbackrest-clone.conf").write_text(source_side)
            (conf.dir / "pgbackrest-clone.conf").chmod(0o644)
            node.config["bootstrap"].update(clone_bootstrap(files))
            assert node.config["bootstrap"]["clone_with_wale"]["recovery_conf"]["recovery_target_time"]
            pitr.start_agents([node])
            leader = pitr.wait_leader(300)
            assert leader.sql("SELECT id FROM events ORDER BY id") == [(1,), (2,)], "row 3 came after the target"
            assert "clone-pgbackrest: restoring backup" in leader.log_path.read_text(errors="replace")
            assert leader.is_writable()
            leader.sql("INSERT INTO events (id) VALUES (4)")
            wait_for("the clone running as primary", lambda: leader.api("/patroni")[1].get("state") == "running", 60)
            # its own stanza (post_bootstrap does this in the image), then it archives to its own bucket
            assert "creating stanza pitr" in conf.keeper(leader).stdout
            switch_and_archive(leader)
            assert any(k.startswith("pitr/archive/pitr/") for k in s3.keys(CLONE_BUCKET)), "archives to its own"
            assert not any(k.startswith("pitr/") for k in s3.keys(BUCKET)), "the source's bucket is only read"
        finally:
            conf.close()
    finally:
        source_conf.close()
