"""CLONE_* and STANDBY_* variables in, bootstrap sections out; bad values stop with one line."""
from __future__ import annotations

import configparser
from typing import Any

import pytest
import yaml

from howdah.entrypoint import main, render, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * 1024 ** 3))
NODE = {"SCOPE": "copy", "ETCD_HOST": "etcd:2379"}


def files(**env: str) -> dict[str, str]:
    return {name: text for name, (text, _mode) in render.render_all(settings.load({**NODE, **env}, FACTS)).items()}


def agent(**env: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(files(**env)["howdah.yml"])
    return loaded


def test_no_clone_keeps_initdb() -> None:
    boot = agent()["bootstrap"]
    assert "method" not in boot and "initdb" in boot


def test_clone_with_basebackup() -> None:
    boot = agent(CLONE_METHOD="CLONE_WITH_BASEBACKUP", CLONE_HOST="source-1", CLONE_PORT="5433",
                 CLONE_USER="replicator", CLONE_PASSWORD="secret")["bootstrap"]
    assert boot["method"] == "clone_with_basebackup"
    command = boot["clone_with_basebackup"]["command"]
    assert command == "/usr/local/bin/howdah-clone-basebackup --host=source-1 --port=5433 --user=replicator"
    assert "secret" not in files(CLONE_METHOD="CLONE_WITH_BASEBACKUP", CLONE_HOST="h",
                                 CLONE_PASSWORD="secret")["howdah.yml"], "the password stays in the environment"
    assert "recovery_conf" not in boot["clone_with_basebackup"]


def test_clone_user_defaults_to_the_replication_user() -> None:
    boot = agent(CLONE_METHOD="clone_with_basebackup", CLONE_HOST="h", PGUSER_STANDBY="repl")["bootstrap"]
    assert "--user=repl" in boot["clone_with_basebackup"]["command"]


@pytest.mark.parametrize("method,name", [("CLONE_WITH_PGBACKREST", "clone_with_pgbackrest"),
                                         ("CLONE_WITH_WALE", "clone_with_wale")])
def test_clone_from_backup_with_pitr(method: str, name: str) -> None:
    out = files(CLONE_METHOD=method, CLONE_SCOPE="prod", CLONE_TARGET_TIME="2026-05-01T12:30:00+02:00")
    boot = yaml.safe_load(out["howdah.yml"])["bootstrap"]
    assert boot["method"] == name
    spec = boot[name]
    assert spec["command"] == ("/usr/local/bin/howdah-clone-pgbackrest --config=/run/howdah/pgbackrest-clone.conf"
                               " --stanza=prod --target-time='2026-05-01 12:30:00+02:00'")
    assert spec["recovery_conf"] == {
        "restore_command": 'pgbackrest --config=/run/howdah/pgbackrest-clone.conf --stanza=prod archive-get %f "%p"',
        "recovery_target_action": "promote",
        "recovery_target_timeline": "latest",
        "recovery_target_time": "2026-05-01 12:30:00+02:00",
    }
    assert not spec.get("keep_existing_recovery_conf")
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.read_string(out["pgbackrest-clone.conf"])
    assert conf["prod"]["pg1-path"] == "/home/postgres/pgdata/pgroot/data", "the source stanza restores here"
    assert "repo1-retention-full" not in conf["global"], "the source's repository is never expired from here"
    own = configparser.ConfigParser(interpolation=None, strict=False)
    own.read_string(out["pgbackrest.conf"])
    assert own["copy"]["pg1-path"] == "/home/postgres/pgdata/pgroot/data" and "prod" not in own


def test_clone_from_backup_without_target_replays_the_whole_archive() -> None:
    spec = agent(CLONE_METHOD="CLONE_WITH_PGBACKREST", CLONE_SCOPE="prod",
                 CLONE_TARGET_TIMELINE="3")["bootstrap"]["clone_with_pgbackrest"]
    assert "--target-time=" not in spec["command"]
    assert "recovery_target_time" not in spec["recovery_conf"]
    assert spec["recovery_conf"]["recovery_target_timeline"] == "3"


@pytest.mark.parametrize("value", ["2026-05-01 12:30:00Z", "2026-05-01T12:30:00+00:00", "2026-05-01 12:30:00-05:30"])
def test_target_time_with_a_zone_is_accepted(value: str) -> None:
    spec = agent(CLONE_METHOD="CLONE_WITH_WALE", CLONE_SCOPE="prod", CLONE_TARGET_TIME=value)["bootstrap"]["clone_with_wale"]
    assert spec["recovery_conf"]["recovery_target_time"].startswith("2026-05-01 12:30:00")
    assert spec["recovery_conf"]["recovery_target_time"][-6] in "+-"


@pytest.mark.parametrize("env,variable,words", [
    ({"CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "prod", "CLONE_TARGET_TIME": "2026-05-01 12:30:00"},
     "CLONE_TARGET_TIME", "has no time zone"),
    ({"CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "prod", "CLONE_TARGET_TIME": "yesterday"},
     "CLONE_TARGET_TIME", "not an ISO 8601 timestamp"),
    ({"CLONE_METHOD": "CLONE_WITH_MAGIC"}, "CLONE_METHOD", "not a clone method"),
    ({"CLONE_METHOD": "CLONE_WITH_BASEBACKUP"}, "CLONE_HOST", "not set"),
    ({"CLONE_METHOD": "CLONE_WITH_PGBACKREST"}, "CLONE_SCOPE", "not set"),
    ({"CLONE_METHOD": "CLONE_WITH_PGBACKREST", "CLONE_SCOPE": "copy"}, "CLONE_SCOPE", "own SCOPE"),
    ({"CLONE_METHOD": "CLONE_WITH_BASEBACKUP", "CLONE_HOST": "h", "CLONE_PORT": "x"}, "CLONE_PORT", "not a port"),
    ({"CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "p", "CLONE_TARGET_TIMELINE": "next"},
     "CLONE_TARGET_TIMELINE", "not a timeline"),
])
def test_bad_clone_variables(env: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(EnvError) as caught:
        settings.load({**NODE, **env}, FACTS)
    assert caught.value.variable == variable and words in caught.value.problem


def test_bad_target_time_stops_the_container_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in {**NODE, "CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "prod",
                       "CLONE_TARGET_TIME": "2026-05-01 12:30:00"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as caught:
        main.main(["render"])
    assert caught.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "invalid CLONE_TARGET_TIME" in lines[0] and "time zone" in lines[0]


def test_standby_cluster_from_env() -> None:
    dcs = agent(STANDBY_HOST="primary.example", STANDBY_PORT="5433",
                STANDBY_PRIMARY_SLOT_NAME="standby_copy")["bootstrap"]["dcs"]
    assert dcs["standby_cluster"] == {"host": "primary.example", "port": 5433, "primary_slot_name": "standby_copy"}
    assert "standby_cluster" not in agent()["bootstrap"]["dcs"]
    assert agent(STANDBY_HOST="p")["bootstrap"]["dcs"]["standby_cluster"] == {"host": "p", "port": 5432}


def test_clone_from_an_s3_repository_reads_the_source_scopes_path() -> None:
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    out = files(CLONE_METHOD="CLONE_WITH_WALE", CLONE_SCOPE="prod", WAL_S3_BUCKET="b")
    conf.read_string(out["pgbackrest.conf"])
    source = configparser.ConfigParser(interpolation=None, strict=False)
    source.read_string(out["pgbackrest-clone.conf"])
    assert conf["global"]["repo1-path"] == "/copy" and source["global"]["repo1-path"] == "/prod"
    assert source["global"]["repo1-s3-bucket"] == "b" and "prod" in source
