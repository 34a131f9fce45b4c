"""What the entrypoint renders for archive health (the agent's archive_health section, the
refusal of pgBackRest's WAL-dropping queue limit), standby clusters that follow another cluster
through its S3 archive (STANDBY_WAL_S3_BUCKET, STANDBY_AWS_*, STANDBY_SCOPE), with or without
streaming, and the clone's CLONE_TARGET_INCLUSIVE and timeline targets."""
from __future__ import annotations

import configparser
from typing import Any

import pytest
import yaml

from harness.scripts import load_script
from howdah.agent.archive_health import ArchiveConfig
from howdah.entrypoint import render, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * 1024 ** 3))
NODE = {"SCOPE": "dr", "ETCD_HOST": "etcd:2379"}


def files(**env: str) -> dict[str, str]:
    return {name: text for name, (text, _mode) in render.render_all(settings.load({**NODE, **env}, FACTS)).items()}


def agent(**env: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(files(**env)["howdah.yml"])
    return loaded


def ini(text: str) -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.read_string(text)
    return conf


# ---- archive health ----------------------------------------------------------------------------
def test_archive_health_section_with_archiving_only() -> None:
    assert "archive_health" not in agent()
    section = agent(WAL_S3_BUCKET="b")["archive_health"]
    assert section == {"interval": 15, "warn_after": 300, "repository_interval": 300,
                       "pgbackrest_config": "/run/howdah/pgbackrest.conf", "stanza": "dr",
                       "status_file": "/run/howdah/backup-status.json"}
    tuned = agent(PGBACKREST="true", ARCHIVE_CHECK_INTERVAL="5", ARCHIVE_WARNING_AFTER="120",
                  REPOSITORY_CHECK_INTERVAL="600")["archive_health"]
    assert (tuned["interval"], tuned["warn_after"], tuned["repository_interval"]) == (5, 120, 600)
    cfg = ArchiveConfig.from_raw(tuned)  # what the agent reads back
    assert cfg.warn_after == 120.0 and cfg.stanza == "dr" and cfg.pgbackrest_config.endswith("pgbackrest.conf")


def test_a_bad_archive_health_overlay_stops_the_container_with_one_line() -> None:
    env = {**NODE, "WAL_S3_BUCKET": "b", "SPILO_CONFIGURATION": "archive_health: {warn_after: soon}"}
    s = settings.load(env, FACTS)
    text = render.render_all(s)["howdah.yml"][0]
    with pytest.raises(EnvError) as err:
        render.check_agent_config(text, env)
    line = err.value.line()
    assert "archive_health.warn_after" in line and "\n" not in line


@pytest.mark.parametrize("variable", ["ARCHIVE_CHECK_INTERVAL", "ARCHIVE_WARNING_AFTER", "REPOSITORY_CHECK_INTERVAL"])
def test_archive_health_intervals_are_checked(variable: str) -> None:
    with pytest.raises(EnvError) as err:
        files(WAL_S3_BUCKET="b", **{variable: "0"})
    assert variable in err.value.line() and "\n" not in err.value.line()


def test_the_wal_dropping_queue_limit_is_refused() -> None:
    with pytest.raises(EnvError) as err:
        files(WAL_S3_BUCKET="b", PGBACKREST_ARCHIVE_PUSH_QUEUE_MAX="1GiB")
    line = err.value.line()
    assert "PGBACKREST_ARCHIVE_PUSH_QUEUE_MAX" in line and "drop WAL" in line and "unset it" in line
    text = files(WAL_S3_BUCKET="b")["pgbackrest.conf"]
    assert "queue-max" not in text and "archive-async" not in text


# ---- standby cluster from the archive ----------------------------------------------------------
ARCHIVE = {"STANDBY_WAL_S3_BUCKET": "prod-backups", "STANDBY_SCOPE": "prod",
           "STANDBY_AWS_ACCESS_KEY_ID": "AKIASTANDBY", "STANDBY_AWS_SECRET_ACCESS_KEY": "standby-secret",
           "AWS_ENDPOINT": "https://minio.internal:9000", "AWS_CA_BUNDLE": "/etc/ssl/minio-ca.pem"}
STANDBY_PGBR = "pgbackrest --config=/run/howdah/pgbackrest-standby.conf --stanza=prod"


def test_standby_cluster_from_the_archive_only() -> None:
    out = files(**ARCHIVE)
    config = yaml.safe_load(out["howdah.yml"])
    std = config["bootstrap"]["dcs"]["standby_cluster"]
    assert std == {"restore_command": STANDBY_PGBR + ' archive-get %f "%p"',
                   "create_replica_methods": ["bootstrap_standby_with_wale"]}, "no host: the archive only"
    method = config["postgresql"]["bootstrap_standby_with_wale"]
    assert method == {"command": STANDBY_PGBR + " --delta --type=preserve restore", "keep_data": True,
                      "no_params": True, "no_leader": True}
    conf = ini(out["pgbackrest-standby.conf"])
    g = conf["global"]
    assert (g["repo1-type"], g["repo1-s3-bucket"], g["repo1-path"]) == ("s3", "prod-backups", "/prod")
    assert (g["repo1-s3-key"], g["repo1-s3-key-secret"]) == ("AKIASTANDBY", "standby-secret")
    assert (g["repo1-s3-endpoint"], g["repo1-storage-port"], g["repo1-s3-uri-style"]) == ("minio.internal", "9000", "path")
    assert g["repo1-storage-ca-file"] == "/etc/ssl/minio-ca.pem", "endpoint and CA fall back to AWS_*"
    assert "repo1-retention-full" not in g, "the source's repository is never expired from here"
    assert conf["prod"]["pg1-path"] == "/home/postgres/pgdata/pgroot/data"
    assert "archive_command" not in str(config["bootstrap"]["dcs"]), "WAL_S3_BUCKET of its own is separate"
    from howdah.config.load import validate
    validate(config)  # the agent accepts it


def test_standby_scope_defaults_to_this_clusters_scope_and_credentials_to_the_clusters() -> None:
    out = files(STANDBY_WAL_S3_BUCKET="prod-backups", AWS_ACCESS_KEY_ID="AKIAOWN", AWS_SECRET_ACCESS_KEY="own")
    g = ini(out["pgbackrest-standby.conf"])
    assert g["global"]["repo1-path"] == "/dr" and "dr" in g.sections()
    assert g["global"]["repo1-s3-key"] == "AKIAOWN"


def test_standby_cluster_combining_streaming_and_archive() -> None:
    config = agent(**ARCHIVE, STANDBY_HOST="prod-primary", STANDBY_PORT="5433", STANDBY_PRIMARY_SLOT_NAME="dr")
    std = config["bootstrap"]["dcs"]["standby_cluster"]
    assert std == {"host": "prod-primary", "port": 5433, "primary_slot_name": "dr",
                   "restore_command": STANDBY_PGBR + ' archive-get %f "%p"',
                   "create_replica_methods": ["bootstrap_standby_with_wale", "basebackup"]}


def test_standby_cluster_streaming_only_is_unchanged() -> None:
    out = files(STANDBY_HOST="prod-primary")
    config = yaml.safe_load(out["howdah.yml"])
    assert config["bootstrap"]["dcs"]["standby_cluster"] == {"host": "prod-primary", "port": 5432}
    assert "bootstrap_standby_with_wale" not in config["postgresql"] and "pgbackrest-standby.conf" not in out
    assert "standby_cluster" not in agent()["bootstrap"]["dcs"]


def test_standby_variables_are_checked() -> None:
    with pytest.raises(EnvError) as err:
        files(STANDBY_WAL_S3_BUCKET="b", STANDBY_AWS_ACCESS_KEY_ID="k")
    assert "STANDBY_AWS_SECRET_ACCESS_KEY" in err.value.line()
    with pytest.raises(EnvError) as err:
        files(STANDBY_WAL_S3_BUCKET="b", STANDBY_SCOPE="no/slashes")
    assert "STANDBY_SCOPE" in err.value.line()
    with pytest.raises(EnvError) as err:
        files(STANDBY_WAL_S3_BUCKET="b", STANDBY_AWS_ENDPOINT="http://minio:9000")
    assert "STANDBY_AWS_ENDPOINT" in err.value.line() and "HTTPS" in err.value.line()


# ---- clone targets -----------------------------------------------------------------------------
CLONE = {"CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "prod", "CLONE_TARGET_TIME": "2026-05-01 12:30:00+00:00"}


@pytest.mark.parametrize("raw,expected", [("false", False), ("true", True), ("off", False)])
def test_clone_target_inclusive(raw: str, expected: bool) -> None:
    spec = agent(**CLONE, CLONE_TARGET_INCLUSIVE=raw)["bootstrap"]["clone_with_wale"]
    assert spec["recovery_conf"]["recovery_target_inclusive"] is expected
    assert spec["recovery_conf"]["recovery_target_time"] == "2026-05-01 12:30:00+00:00"


def test_clone_target_inclusive_default_and_without_a_time() -> None:
    assert "recovery_target_inclusive" not in agent(**CLONE)["bootstrap"]["clone_with_wale"]["recovery_conf"], \
        "not set: PostgreSQL's (and Spilo's) default, inclusive"
    no_time = {k: v for k, v in CLONE.items() if k != "CLONE_TARGET_TIME"}
    spec = agent(**no_time, CLONE_TARGET_INCLUSIVE="false")["bootstrap"]["clone_with_wale"]
    assert "recovery_target_inclusive" not in spec["recovery_conf"], "no target: nothing to include or exclude"
    with pytest.raises(EnvError) as err:
        files(**CLONE, CLONE_TARGET_INCLUSIVE="maybe")
    assert "CLONE_TARGET_INCLUSIVE" in err.value.line()


@pytest.mark.parametrize("timeline,flag", [("latest", None), ("current", None), ("3", "--target-timeline=3")])
def test_clone_timeline_targets(timeline: str, flag: str | None) -> None:
    spec = agent(**CLONE, CLONE_TARGET_TIMELINE=timeline)["bootstrap"]["clone_with_wale"]
    assert spec["recovery_conf"]["recovery_target_timeline"] == timeline
    if flag:
        assert spec["command"].endswith(flag)
    else:
        assert "--target-timeline" not in spec["command"]


def test_clone_script_chooses_a_backup_on_the_target_timeline_or_before() -> None:
    clone = load_script("bootstrap/clone_with_pgbackrest.py")

    def b(label: str, tl: int, stop: int) -> dict[str, Any]:
        return {"label": label, "timestamp": {"start": stop - 5, "stop": stop},
                "archive": {"start": f"{tl:08X}0000000000000002", "stop": f"{tl:08X}0000000000000003"}}
    info = [{"name": "prod", "backup": [b("tl1", 1, 100), b("tl2", 2, 200), b("tl3", 3, 300)]}]
    assert clone.choose_backup(info, "prod", None)["label"] == "tl3"
    assert clone.choose_backup(info, "prod", None, 2)["label"] == "tl2"
    assert clone.choose_backup(info, "prod", None, 1)["label"] == "tl1"
    assert clone.choose_backup(info, "prod", None, 0) is None
    assert clone.timeline_of({"archive": {"start": "0000000A0000000000000002"}}) == 10
    assert clone.timeline_of({}) == 0
