"""Which file howdahctl reads, the PATRONI_* overrides, and what it takes from it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from howdah.ctl.api import pool_for
from howdah.ctl.config import IMAGE_RUN_DIR, config_path, load_ctl_config
from howdah.ctl.errors import CtlError


def write(tmp_path: Path, tree: dict[str, Any]) -> str:
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(tree))
    return str(path)


def test_config_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"HOWDAH_CONFIG": "/a", "PATRONICTL_CONFIG_FILE": "/b",
           "PATRONI_CONFIGURATION_FILE": "/c"}
    assert config_path("/given", env) == "/given"
    assert config_path(None, env) == "/a"
    assert config_path(None, {"PATRONICTL_CONFIG_FILE": "/b",
                              "PATRONI_CONFIGURATION_FILE": "/c"}) == "/b"
    assert config_path(None, {"PATRONI_CONFIGURATION_FILE": "/c"}) == "/c"
    assert config_path(None, {}) is None
    default = tmp_path / ".config" / "patroni" / "patronictl.yaml"
    default.parent.mkdir(parents=True)
    default.write_text("scope: x\n")
    assert config_path(None, {}) == str(default)


def test_inside_the_image_the_rendered_agent_file_is_found(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from howdah.entrypoint.settings import DEFAULT_RUN_DIR
    assert IMAGE_RUN_DIR == DEFAULT_RUN_DIR
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "howdah.yml").write_text("scope: x\n")
    assert config_path(None, {"HOWDAH_RUN_DIR": str(tmp_path)}) == str(tmp_path / "howdah.yml")


def test_minimal_patronictl_style_file(tmp_path: Path) -> None:
    cfg = load_ctl_config(write(tmp_path, {"scope": "demo", "etcd": {"hosts": "h1:2379"}}), {})
    assert (cfg.scope, cfg.namespace, dict(cfg.dcs)) == ("demo", "/service/", {"hosts": "h1:2379"})


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"scope": "demo", "etcd": {"host": "h1:2379"}})
    cfg = load_ctl_config(path, {"PATRONI_SCOPE": "other", "PATRONI_ETCD_HOSTS": "h2:2379",
                                 "PATRONI_NAMESPACE": "/ns/"})
    assert cfg.scope == "other" and cfg.namespace == "/ns/"
    assert cfg.dcs == {"hosts": "h2:2379"}


def test_environment_only(tmp_path: Path) -> None:
    cfg = load_ctl_config(None, {"PATRONI_SCOPE": "envonly", "PATRONI_ETCD_URL": "http://e:2379",
                                 "HOME": str(tmp_path)})
    assert cfg.scope == "envonly" and cfg.dcs == {"url": "http://e:2379"}


def test_a_full_agent_file_is_validated_as_the_agent_would(tmp_path: Path) -> None:
    tree = {"scope": "demo", "name": "n1", "etcd": {"host": "h:2379"},
            "restapi": {"listen": "0.0.0.0:8008"},
            "postgresql": {"listen": "0.0.0.0:5432", "data_dir": "/d",
                           "authentication": {"superuser": {"username": "su", "password": "p"},
                                              "replication": {"username": "r"}}}}
    cfg = load_ctl_config(write(tmp_path, tree), {})
    assert cfg.superuser == {"username": "su", "password": "p"}
    tree["restapi"] = {"listen": "nonsense"}
    with pytest.raises(CtlError, match="restapi.listen"):
        load_ctl_config(write(tmp_path, tree), {})


@pytest.mark.parametrize("tree, message", [
    ({"etcd": {"host": "h:1"}}, "scope"),
    ({"scope": "x"}, "no DCS"),
    ({"scope": "x", "consul": {"host": "h"}}, "not supported"),
    ({"scope": "x", "etcd": {}}, "host"),
])
def test_missing_pieces(tmp_path: Path, tree: dict[str, Any], message: str) -> None:
    with pytest.raises(CtlError, match=message):
        load_ctl_config(write(tmp_path, tree), {})


def test_api_auth_prefers_ctl_then_restapi(tmp_path: Path) -> None:
    base: dict[str, Any] = {"scope": "x", "etcd": {"host": "h:1"},
                            "restapi": {"authentication": {"username": "r", "password": "rp"}}}
    assert load_ctl_config(write(tmp_path, base), {}).api_auth == ("r", "rp")
    base["ctl"] = {"authentication": {"username": "c", "password": "cp"}}
    assert load_ctl_config(write(tmp_path, base), {}).api_auth == ("c", "cp")
    assert load_ctl_config(write(tmp_path, {"scope": "x", "etcd": {"host": "h:1"}}),
                           {}).api_auth is None


def test_tls_options_from_ctl() -> None:
    pool = pool_for({"cacert": "/ca.pem", "certfile": "/c.pem", "keyfile": "/k.pem"})
    assert isinstance(pool, urllib3.PoolManager)
    kw = pool.connection_pool_kw
    assert (kw["cert_reqs"], kw["ca_certs"], kw["cert_file"], kw["key_file"]) == \
        ("CERT_REQUIRED", "/ca.pem", "/c.pem", "/k.pem")
    assert pool_for({"insecure": True}).connection_pool_kw["cert_reqs"] == "CERT_NONE"
