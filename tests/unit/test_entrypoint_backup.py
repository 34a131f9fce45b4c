"""pgBackRest archiving in the rendered files: restore_command, replica methods, the keeper."""
from __future__ import annotations

import configparser
from typing import Any

import pytest
import yaml

from howdah.entrypoint import render, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * 1024 ** 3))
NODE = {"SCOPE": "demo", "ETCD_HOST": "etcd:2379"}
PGBR = "pgbackrest --config=/run/howdah/pgbackrest.conf --stanza=demo"


def files(**env: str) -> dict[str, str]:
    return {name: text for name, (text, _mode) in render.render_all(settings.load({**NODE, **env}, FACTS)).items()}


def agent(**env: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(files(**env)["howdah.yml"])
    return loaded


def supervisord(**env: str) -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(files(**env)["supervisord.conf"])
    return conf


def test_archiving_off_adds_nothing() -> None:
    pg = agent()["postgresql"]
    assert "create_replica_methods" not in pg and "recovery_conf" not in pg and "pgbackrest" not in pg
    assert "program:backup-keeper" not in supervisord().sections()


def test_archiving_wires_pgbackrest_everywhere() -> None:
    conf = agent(PGBACKREST="true")
    params = conf["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert params["archive_mode"] == "on" and params["archive_command"] == PGBR + " archive-push %p"
    pg = conf["postgresql"]
    assert pg["recovery_conf"] == {"restore_command": PGBR + ' archive-get %f "%p"'}
    assert pg["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert pg["pgbackrest"] == {"command": PGBR + " --delta --type=standby restore", "keep_data": True, "no_params": True}
    assert pg["wal_e"]["command"] == ("/usr/local/bin/howdah-restore-replica --config=/run/howdah/pgbackrest.conf"
                                      " --stanza=demo")
    assert pg["wal_e"]["threshold_megabytes"] == 10240 and pg["wal_e"]["threshold_backup_size_percentage"] == 30
    assert pg["wal_e"]["no_master"] == 1
    keeper = supervisord(PGBACKREST="true")["program:backup-keeper"]
    assert keeper["command"].startswith("/usr/local/bin/howdah-backup-keeper --config=/run/howdah/pgbackrest.conf --stanza=demo")
    assert "--api-url=http://127.0.0.1:8008/patroni" in keeper["command"] and "--interval=30" in keeper["command"]


def test_replica_methods_and_thresholds_from_env() -> None:
    pg = agent(PGBACKREST="1", REPLICA_METHODS="wal_e, basebackup", WALE_BACKUP_THRESHOLD_MEGABYTES="64",
               WALE_BACKUP_THRESHOLD_PERCENTAGE="50")["postgresql"]
    assert pg["create_replica_methods"] == ["wal_e", "basebackup"]
    assert pg["wal_e"]["threshold_megabytes"] == 64 and pg["wal_e"]["threshold_backup_size_percentage"] == 50


def test_unknown_replica_method_is_rejected() -> None:
    with pytest.raises(EnvError) as caught:
        settings.load({**NODE, "REPLICA_METHODS": "pgbackrest,rsync"}, FACTS)
    assert caught.value.variable == "REPLICA_METHODS" and "'rsync'" in caught.value.problem


def test_repository_path() -> None:
    default = configparser.ConfigParser(interpolation=None)
    default.read_string(files(PGBACKREST="true")["pgbackrest.conf"])
    assert default["global"]["repo1-path"] == "/home/postgres/pgdata/pgbackrest"
    shared = configparser.ConfigParser(interpolation=None)
    shared.read_string(files(PGBACKREST="true", PGBACKREST_REPO_PATH="/home/postgres/pgbackrest")["pgbackrest.conf"])
    assert shared["global"]["repo1-path"] == "/home/postgres/pgbackrest"
    assert shared["demo"]["pg1-path"] == "/home/postgres/pgdata/pgroot/data"


def test_s3_repository_also_archives() -> None:
    conf = configparser.ConfigParser(interpolation=None)
    out = files(WAL_S3_BUCKET="wal", AWS_ENDPOINT="https://minio:9000", AWS_ACCESS_KEY_ID="k",
                AWS_SECRET_ACCESS_KEY="s", AWS_S3_FORCE_PATH_STYLE="true")
    conf.read_string(out["pgbackrest.conf"])
    assert conf["global"]["repo1-type"] == "s3" and conf["global"]["repo1-s3-bucket"] == "wal"
    assert yaml.safe_load(out["howdah.yml"])["postgresql"]["create_replica_methods"] == ["pgbackrest", "basebackup"]


def test_user_overlay_still_wins() -> None:
    pg = agent(PGBACKREST="true", SPILO_CONFIGURATION="postgresql: {create_replica_methods: [basebackup]}")["postgresql"]
    assert pg["create_replica_methods"] == ["basebackup"]


def test_backup_schedule_type_and_retention_reach_the_keeper() -> None:
    default = supervisord(PGBACKREST="true")["program:backup-keeper"]["command"]
    assert '--schedule="00 01 * * *"' in default and "--type=full" in default, "Spilo's default: daily"
    assert "--status-file=/run/howdah/backup-status.json" in default and "--retain-days" not in default
    cmd = supervisord(PGBACKREST="true", BACKUP_SCHEDULE="*/30  2-4 * * 1,3", BACKUP_TYPE="diff",
                      BACKUP_RETAIN_DAYS="14", BACKUP_RETRY_INTERVAL="60")["program:backup-keeper"]["command"]
    assert '--schedule="*/30 2-4 * * 1,3"' in cmd and "--type=diff" in cmd and "--retain-days=14" in cmd
    assert "--retry-interval=60" in cmd
    assert "--schedule" not in supervisord(PGBACKREST="true", BACKUP_SCHEDULE="off")["program:backup-keeper"]["command"]
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(files(PGBACKREST="true", BACKUP_NUM_TO_RETAIN="3")["pgbackrest.conf"])
    assert conf["global"]["repo1-retention-full"] == "3"


@pytest.mark.parametrize("variable,value", [("BACKUP_SCHEDULE", "daily"), ("BACKUP_SCHEDULE", "0 1 * *"),
                                            ("BACKUP_SCHEDULE", "0 25 * * *"), ("BACKUP_SCHEDULE", "0 1 * * MON"),
                                            ("BACKUP_TYPE", "snapshot"), ("BACKUP_NUM_TO_RETAIN", "0")])
def test_bad_backup_settings_are_one_line(variable: str, value: str) -> None:
    with pytest.raises(EnvError) as caught:
        settings.load({**NODE, "PGBACKREST": "true", variable: value}, FACTS)
    assert caught.value.variable == variable and "\n" not in caught.value.line()
