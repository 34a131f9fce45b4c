"""Credentials: none built in; unset ones generated once, kept in the volume (0600), printed once."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from howdah.entrypoint import credentials, render, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

ROOT = Path(__file__).resolve().parents[2]
FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * 1024 ** 3))


def load(tmp_path: Path, **env: str) -> settings.Settings:
    return settings.load({"HOME_DIR": str(tmp_path), **env}, FACTS)


def test_unset_credentials_are_generated_once_and_kept(tmp_path: Path) -> None:
    (tmp_path / "pgdata").mkdir()
    said: list[str] = []
    s = credentials.resolve(load(tmp_path), said.append)
    file = tmp_path / "pgdata" / "howdah-credentials.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    stored = json.loads(file.read_text())
    passwords = {s.superuser.password, s.standby.password, s.admin.password, s.restapi.password}
    assert len(passwords) == 4 and all(len(p) >= 32 for p in passwords), "random, distinct, long"
    assert "postgres" not in passwords and "admin" not in passwords and "standby" not in passwords
    assert stored["superuser"]["password"] == s.superuser.password
    assert (s.restapi.name, stored["restapi"]["password"]) == ("howdah", s.restapi.password)
    assert str(file) in said[0] and s.superuser.password in "\n".join(said)
    # a later start (a new container on the same volume) reuses them and prints nothing
    again: list[str] = []
    s2 = credentials.resolve(load(tmp_path), again.append)
    assert again == []
    assert (s2.superuser.password, s2.restapi.password) == (s.superuser.password, s.restapi.password)
    conf = yaml.safe_load(render.render_all(s2)["howdah.yml"][0])
    assert conf["restapi"]["authentication"] == {"username": "howdah", "password": s.restapi.password}
    assert conf["postgresql"]["authentication"]["superuser"]["password"] == s.superuser.password


def test_set_credentials_are_used_and_nothing_is_written(tmp_path: Path) -> None:
    s = load(tmp_path, PGPASSWORD_SUPERUSER="a", PGPASSWORD_STANDBY="b", PGPASSWORD_ADMIN="c",
             PATRONI_RESTAPI_USERNAME="ops", PATRONI_RESTAPI_PASSWORD="d")
    said: list[str] = []
    out = credentials.resolve(s, said.append)
    assert out is s and said == [] and not (tmp_path / "pgdata").exists()
    conf = yaml.safe_load(render.render_all(out)["howdah.yml"][0])
    assert conf["restapi"]["authentication"] == {"username": "ops", "password": "d"}


def test_only_the_unset_ones_are_generated(tmp_path: Path) -> None:
    (tmp_path / "pgdata").mkdir()
    s = credentials.resolve(load(tmp_path, PGPASSWORD_SUPERUSER="given"), lambda _line: None)
    stored = json.loads((tmp_path / "pgdata" / "howdah-credentials.json").read_text())
    assert s.superuser.password == "given" and "superuser" not in stored
    assert set(stored) == {"standby", "admin", "restapi"}


def test_a_damaged_file_is_one_line_not_a_new_password(tmp_path: Path) -> None:
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "howdah-credentials.json").write_text("{not json")
    with pytest.raises(EnvError) as info:
        credentials.resolve(load(tmp_path), lambda _line: None)
    assert "howdah-credentials.json" in info.value.line() and "\n" not in info.value.line()


@pytest.mark.parametrize("env, variable", [
    ({"PATRONI_RESTAPI_PASSWORD": "p"}, "PATRONI_RESTAPI_USERNAME"),
    ({"PATRONI_RESTAPI_USERNAME": "u"}, "PATRONI_RESTAPI_PASSWORD"),
    ({"PATRONI_RESTAPI_USERNAME": "u:x", "PATRONI_RESTAPI_PASSWORD": "p"}, "PATRONI_RESTAPI_USERNAME"),
])
def test_half_set_rest_credentials_stop_the_start(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    full = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "image"),
            "HOWDAH_RUN_DIR": str(tmp_path / "run"), "HOME_DIR": str(tmp_path / "home"), **env}
    result = subprocess.run([sys.executable, "-m", "howdah.entrypoint.main"], env=full, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"howdah-entrypoint: invalid {variable}: "), result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "home").exists()


def test_auth_reads_switch(tmp_path: Path) -> None:
    s = load(tmp_path, HOWDAH_RESTAPI_AUTH_READS="true", PATRONI_RESTAPI_USERNAME="u", PATRONI_RESTAPI_PASSWORD="p")
    conf = yaml.safe_load(render.render_all(s)["howdah.yml"][0])
    assert conf["restapi"]["auth_reads"] is True
    assert "auth_reads" not in yaml.safe_load(render.render_all(load(tmp_path))["howdah.yml"][0])["restapi"]


def test_no_fixed_password_in_the_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy
    post = runpy.run_path(str(ROOT / "scripts" / "post_bootstrap.py"))
    monkeypatch.delenv("PGPASSWORD_ADMIN", raising=False)
    monkeypatch.setenv("HOWDAH_CREDENTIALS", str(tmp_path / "missing.json"))
    assert post["admin_password"]() is None  # no built-in fallback
    (tmp_path / "c.json").write_text(json.dumps({"admin": {"username": "admin", "password": "gen"}}))
    monkeypatch.setenv("HOWDAH_CREDENTIALS", str(tmp_path / "c.json"))
    assert post["admin_password"]() == "gen"
    monkeypatch.setenv("PGPASSWORD_ADMIN", "env")
    assert post["admin_password"]() == "env"
    s = settings.load({}, FACTS)
    assert (s.superuser.password, s.standby.password, s.admin.password, s.restapi.password) == ("", "", "", "")
