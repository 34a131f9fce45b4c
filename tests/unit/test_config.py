"""Config validation: bad input gives one line naming the field and the fix."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from howdah.config.load import ConfigError, load
from howdah.core.settings import build_settings

GOOD: dict[str, Any] = {
    "scope": "demo", "name": "n1",
    "restapi": {"listen": "127.0.0.1:8008", "connect_address": "127.0.0.1:8008"},
    "etcd": {"hosts": "127.0.0.1:2379"},
    "bootstrap": {"dcs": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}},
    "postgresql": {
        "listen": "127.0.0.1:5432", "data_dir": "/tmp/x",
        "authentication": {"superuser": {"username": "postgres", "password": "p"},
                           "replication": {"username": "rep", "password": "r"}},
    },
}


def write(tmp_path: Path, tree: Any) -> Path:
    p = tmp_path / "c.yml"
    p.write_text(yaml.safe_dump(tree) if not isinstance(tree, str) else tree)
    return p


def patched(path: str, value: Any) -> dict[str, Any]:
    import copy
    tree = copy.deepcopy(GOOD)
    node = tree
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return tree


def test_good_config_loads(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, GOOD), env={})
    assert (cfg.name, cfg.scope, cfg.namespace) == ("n1", "demo", "/service/")


BAD = [
    ("scope", None, "scope"),
    ("name", None, "name"),
    ("restapi.listen", "127.0.0.1:99999", "restapi.listen"),
    ("restapi.listen", "nocolon", "restapi.listen"),
    ("postgresql.listen", "0.0.0.0:port", "postgresql.listen"),
    ("postgresql.data_dir", None, "postgresql.data_dir"),
    ("bootstrap.dcs.ttl", "twenty", "bootstrap.dcs.ttl"),
    ("bootstrap.dcs.loop_wait", "ten", "bootstrap.dcs.loop_wait"),
    ("postgresql.authentication.replication", None, "postgresql.authentication.replication"),
    ("postgresql.parameters", {"fsync = off\nwork_mem": "1MB"}, "postgresql.parameters"),
    ("postgresql.parameters", ["work_mem"], "postgresql.parameters"),
    ("bootstrap.dcs.postgresql", {"parameters": {"a=b": 1}}, "bootstrap.dcs.postgresql.parameters"),
]


@pytest.mark.parametrize("path,value,field", BAD)
def test_bad_values_name_the_field(tmp_path: Path, path: str, value: Any, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, patched(path, value)), env={})
    assert str(err.value).startswith(field), str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_dcs_is_refused(tmp_path: Path) -> None:
    tree = patched("etcd", None)
    tree["consul"] = {"host": "x:8500"}
    with pytest.raises(ConfigError, match="consul.*not supported"):
        load(write(tmp_path, tree), env={})


def test_a_broken_timing_rule_is_adjusted_as_patroni_does(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, patched("bootstrap.dcs.ttl", 20)), env={})
    settings = build_settings(cfg.bootstrap["dcs"], cfg.postgresql)
    assert (settings.ttl, settings.loop_wait, settings.retry_timeout) == (20, 1, 9)
    assert settings.notes and "using loop_wait=1, retry_timeout=9" in settings.notes[0]


def test_environment_wins_over_file(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, GOOD), env={"PATRONI_NAME": "envname",
                                           "PATRONI_ETCD_HOSTS": "h1:1,h2:2",
                                           "PATRONI_REPLICATION_PASSWORD": "s3"})
    assert cfg.name == "envname"
    assert cfg.dcs["hosts"] == "h1:1,h2:2"
    assert cfg.postgresql["authentication"]["replication"]["password"] == "s3"


def test_bad_env_port_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="restapi.listen"):
        load(write(tmp_path, GOOD), env={"PATRONI_RESTAPI_LISTEN": "0.0.0.0:abc"})


def test_unparsable_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load(write(tmp_path, "scope: [unclosed\n"), env={})


@pytest.mark.parametrize("tree", [patched("bootstrap.dcs.ttl", "ten"), patched("scope", None)])
def test_cli_exits_nonzero_with_one_line(tmp_path: Path, tree: dict[str, Any]) -> None:
    res = subprocess.run([sys.executable, "-m", "howdah.main", str(write(tmp_path, tree))],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("howdah: config error:"), res.stderr


def test_basebackup_options_as_map_or_list() -> None:
    from howdah.pg.clone import basebackup_options
    from howdah.pg.methods import OptionError
    assert basebackup_options({"max-rate": "100M", "checkpoint": "fast"}) == [
        "--max-rate=100M", "--checkpoint=fast"]
    assert basebackup_options(["verbose", {"max-rate": "100M"}, {"waldir": "/x"}]) == [
        "--verbose", "--max-rate=100M", "--waldir=/x"]
    with pytest.raises(OptionError, match="postgresql.basebackup"):
        basebackup_options([{"a": 1, "b": 2}])


def test_initdb_options() -> None:
    from howdah.pg.bootstrap import initdb_options
    from howdah.pg.methods import OptionError
    assert initdb_options([{"encoding": "UTF8"}, "data-checksums"]) == [
        "--encoding=UTF8", "--data-checksums"]
    with pytest.raises(OptionError, match="bootstrap.initdb"):
        initdb_options("data-checksums")


def test_custom_bootstrap_needs_a_command(tmp_path: Path) -> None:
    tree = patched("bootstrap.method", "restore")
    with pytest.raises(ConfigError, match=r"^bootstrap.restore.command"):
        load(write(tmp_path, tree), env={})


def test_replica_method_needs_a_command(tmp_path: Path) -> None:
    tree = patched("postgresql.create_replica_methods", ["pgbackrest", "basebackup"])
    with pytest.raises(ConfigError, match=r"^postgresql.pgbackrest.command"):
        load(write(tmp_path, tree), env={})


@pytest.mark.parametrize("given, used", [
    ((30, 10, 10), (30, 10, 10)),
    ((20, 2, 10), (20, 1, 9)),     # loop_wait at its minimum already: retry_timeout lowered
    ((20, 5, 7), (20, 5, 7)),
    ((20, 10, 7), (20, 6, 7)),     # loop_wait lowered first
    ((5, 2, 10), (5, 1, 2)),
    ((1, 0, -4), (3, 1, 1)),       # below the minimums: raised to them
])
def test_timing_rule_adjustments(given: tuple[int, int, int], used: tuple[int, int, int]) -> None:
    s = build_settings(dict(zip(("ttl", "loop_wait", "retry_timeout"), given)), {})
    assert (s.ttl, s.loop_wait, s.retry_timeout) == used
    assert s.loop_wait + 2 * s.retry_timeout <= s.ttl
    assert bool(s.notes) == (given != used)
