"""Standby clusters that follow another cluster through its S3 archive (tests/harness/s3.py, real
pgBackRest over TLS), configured as the entrypoint renders them from Spilo's variables
(STANDBY_WAL_S3_BUCKET, STANDBY_SCOPE, STANDBY_AWS_* with their own keys; endpoint and CA from
AWS_*):

* archive only: the standby leader is restored from the source's newest backup
  (bootstrap_standby_with_wale) and replays the source's archive, never connecting to it;
* streaming and archive (STANDBY_HOST too): restored from the archive, then streaming from the
  source's primary (a row arrives without any WAL switch).

pgBackRest's --type=preserve restore leaves no recovery setting of its own in
postgresql.auto.conf (it would outlive the standby cluster).  Side by side: the same standby
YAML run by Patroni 4.1.5 and by Howdah gives the same outcome (the source is a Howdah cluster)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

pytest.importorskip("moto")
pytest.importorskip("cryptography")

from harness import LocalCluster  # noqa: E402
from harness.node import AgentNode  # noqa: E402
from harness.s3 import BUCKET, Rendered, S3Server  # noqa: E402
from harness.archive import switch_and_archive  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

pytestmark = [pytest.mark.local, pytest.mark.timeout(1200)]
CREATED = {"howdah": "replica created with method bootstrap_standby_with_wale",
           "patroni": "replica has been created using bootstrap_standby_with_wale"}
STANDBY_KEY, STANDBY_SECRET = "standby-reader-key", "standby-reader-secret"  # moto accepts any key


def standby_extra(s3: S3Server, node: AgentNode, scope: str, **env: str) -> tuple[Rendered, dict[str, Any]]:
    """The standby_cluster section and restore method the entrypoint renders for `node`."""
    conf = Rendered(s3, scope, STANDBY_WAL_S3_BUCKET=BUCKET, STANDBY_SCOPE="src",
                    STANDBY_AWS_ACCESS_KEY_ID=STANDBY_KEY, STANDBY_AWS_SECRET_ACCESS_KEY=STANDBY_SECRET, **env)
    out = conf.files(node)
    standby_conf = Path(conf.dir) / "pgbackrest-standby.conf"
    standby_conf.write_text(out["pgbackrest-standby.conf"])
    standby_conf.chmod(0o644)
    text = standby_conf.read_text()
    assert f"repo1-s3-key={STANDBY_KEY}" in text and "repo1-path=/src" in text and "[src]" in text, text
    rendered = yaml.safe_load(out["howdah.yml"])
    std = rendered["bootstrap"]["dcs"]["standby_cluster"]
    # archive-get runs in the data directory (as the harness's own archiving does)
    std["restore_command"] = std["restore_command"].replace(" archive-get", ' --pg1-path="$PWD" archive-get')
    return conf, {"bootstrap": {"dcs": {"standby_cluster": std}},
                  "postgresql": {"bootstrap_standby_with_wale": rendered["postgresql"]["bootstrap_standby_with_wale"]}}


def apply(node: AgentNode, extra: dict[str, Any]) -> None:
    node.config.setdefault("bootstrap", {}).setdefault("dcs", {}).update(extra["bootstrap"]["dcs"])
    node.config.setdefault("postgresql", {}).update(extra["postgresql"])


def rows(node: AgentNode) -> list[str]:
    return [r[0] for r in node.sql("SELECT v FROM shipped ORDER BY v")]


@pytest.mark.parametrize("kind", [pytest.param("patroni", marks=pytest.mark.patroni), "howdah"])
def test_standby_clusters_from_the_s3_archive_alone_and_with_streaming(
        kind: str, s3: S3Server, local_cluster: Callable[..., LocalCluster], request: pytest.FixtureRequest) -> None:
    if kind == "patroni":
        request.getfixturevalue("patroni_venv")
    source = Rendered(s3, "src")
    confs = [source]
    try:
        src = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, scope="src", extra=source.archiving())
        primary = src.wait_leader(180)
        wait_for("the source primary running", lambda: primary.api("/patroni")[1].get("state") == "running", 60)
        primary.sql("CREATE TABLE shipped (v text)")
        primary.sql("INSERT INTO shipped VALUES ('a: in the backup')")
        assert "taking a full backup" in source.keeper(primary).stdout
        primary.sql("INSERT INTO shipped VALUES ('b: archived after the backup')")
        switch_and_archive(primary)

        # 1. archive only
        dr = local_cluster(1, kind=kind, ttl=8, loop_wait=1, retry_timeout=3, scope="dr", start_agents=False)
        leader = dr.nodes[0]
        conf, extra = standby_extra(s3, leader, "dr")
        confs.append(conf)
        std = extra["bootstrap"]["dcs"]["standby_cluster"]
        assert "host" not in std and std["create_replica_methods"] == ["bootstrap_standby_with_wale"]
        apply(leader, extra)
        dr.start_agents([leader])
        wait_for("the archive-only standby leader", lambda: leader.api("/standby-leader")[0] == 200, 300)
        assert CREATED[kind] in leader.log_path.read_text(errors="replace")
        wait_for("the archived rows replayed", lambda: rows(leader) == ["a: in the backup",
                                                                       "b: archived after the backup"], 120)
        primary.sql("INSERT INTO shipped VALUES ('c: shipped through the archive')")
        switch_and_archive(primary)
        wait_for("a row arriving through the archive", lambda: "c: shipped through the archive" in rows(leader), 180)
        assert leader.sql("SELECT count(*) FROM pg_stat_wal_receiver") == [(0,)], "it never streams"
        assert not leader.is_writable() and leader.role() == "standby_leader"
        auto_conf = Path(leader.data_dir) / "postgresql.auto.conf"
        auto = auto_conf.read_text() if auto_conf.exists() else ""
        assert "restore_command" not in auto and "recovery_target" not in auto, auto

        # 2. streaming and archive
        both = local_cluster(1, kind=kind, ttl=8, loop_wait=1, retry_timeout=3, scope="dr2", start_agents=False)
        leader2 = both.nodes[0]
        conf2, extra2 = standby_extra(s3, leader2, "dr2", STANDBY_HOST="127.0.0.1",
                                      STANDBY_PORT=str(primary.pg_port))
        confs.append(conf2)
        std2 = extra2["bootstrap"]["dcs"]["standby_cluster"]
        assert std2["host"] == "127.0.0.1" and std2["port"] == primary.pg_port
        assert std2["create_replica_methods"] == ["bootstrap_standby_with_wale", "basebackup"]
        apply(leader2, extra2)
        both.start_agents([leader2])
        wait_for("the streaming+archive standby leader", lambda: leader2.api("/standby-leader")[0] == 200, 300)
        assert CREATED[kind] in leader2.log_path.read_text(errors="replace"), \
            "restored from the archive, not copied from the host"
        wait_for("streaming from the source", lambda: leader2.sql(
            "SELECT status FROM pg_stat_wal_receiver") == [("streaming",)], 180)
        primary.sql("INSERT INTO shipped VALUES ('d: streamed')")  # no WAL switch: only streaming brings it
        wait_for("the streamed row", lambda: "d: streamed" in rows(leader2), 60)
        assert rows(leader2)[:3] == ["a: in the backup", "b: archived after the backup",
                                     "c: shipped through the archive"]
        assert not leader2.is_writable()
    finally:
        for c in confs:
            c.close()
