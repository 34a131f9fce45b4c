"""Spilo's TLS, locale, admin, log and cron variables: environment in, rendered config out."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from howdah.entrypoint import render, settings, system
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

GiB = 1024 ** 3
FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * GiB),
                       locales=("C", "C.utf8", "POSIX", "en_US.utf8"))
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"


def load(**env: str) -> settings.Settings:
    return settings.load(env, FACTS)


def agent(**env: str) -> dict:
    return yaml.safe_load(render.render_all(load(**env))["howdah.yml"][0])


def test_pem_variables_are_written_to_their_files() -> None:
    s = load(SSL_CERTIFICATE=CERT, SSL_CERTIFICATE_FILE="/certs/pg.crt", SSL_PRIVATE_KEY=KEY,
             SSL_CA=CERT, SSL_CRL_FILE="/certs/pg.crl")
    # both the PEM and its _FILE: the PEM goes to the file (not a self-signed certificate)
    assert ("/certs/pg.crt", CERT + "\n", 0o644) in s.tls.writes
    assert ("/run/howdah/ssl/server.key", KEY + "\n", 0o600) in s.tls.writes
    params = agent(SSL_CERTIFICATE=CERT, SSL_CERTIFICATE_FILE="/certs/pg.crt", SSL_PRIVATE_KEY=KEY,
                   SSL_CA=CERT, SSL_CRL_FILE="/certs/pg.crl")["postgresql"]["parameters"]
    assert params["ssl_cert_file"] == "/certs/pg.crt"
    assert params["ssl_key_file"] == "/run/howdah/ssl/server.key"
    assert params["ssl_ca_file"] == "/run/howdah/ssl/ca.crt"
    assert params["ssl_crl_file"] == "/certs/pg.crl"


def test_no_ca_no_crl_by_default() -> None:
    params = agent()["postgresql"]["parameters"]
    assert "ssl_ca_file" not in params and "ssl_crl_file" not in params
    assert params["ssl_cert_file"] == "/run/howdah/ssl/server.crt"


def test_restapi_certificates() -> None:
    conf = agent(SSL_RESTAPI_CERTIFICATE=CERT, SSL_RESTAPI_PRIVATE_KEY=KEY, SSL_RESTAPI_CA_FILE="/certs/ca.crt")
    assert conf["restapi"]["certfile"] == "/run/howdah/ssl/restapi.crt"
    assert conf["restapi"]["keyfile"] == "/run/howdah/ssl/restapi.key"
    assert conf["restapi"]["cafile"] == "/certs/ca.crt"
    assert "certfile" not in agent()["restapi"]


@pytest.mark.parametrize("env, named", [
    ({"SSL_RESTAPI_CERTIFICATE": CERT}, "SSL_RESTAPI_PRIVATE_KEY"),
    ({"SSL_RESTAPI_PRIVATE_KEY_FILE": "/k"}, "SSL_RESTAPI_CERTIFICATE"),
    ({"SSL_CA": "not\na pem"}, "SSL_CA"),
    ({"SSL_CERTIFICATE": "/a/path", "SSL_CERTIFICATE_FILE": "/other"}, "SSL_CERTIFICATE"),
])
def test_bad_tls_variables_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(EnvError) as caught:
        settings.load(env, FACTS)
    assert named in caught.value.line() and "\n" not in caught.value.line()


def test_prepare_ssl_writes_pem_and_keeps_key_private(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.crt", tmp_path / "k.key"
    s = load(SSL_CERTIFICATE=CERT, SSL_CERTIFICATE_FILE=str(cert), SSL_PRIVATE_KEY=KEY,
             SSL_PRIVATE_KEY_FILE=str(key))
    system.prepare_ssl(s)
    assert cert.read_text() == CERT + "\n" and key.read_text() == KEY + "\n"
    assert key.stat().st_mode & 0o777 == 0o600


def test_restapi_connect_address() -> None:
    conf = agent(RESTAPI_CONNECT_ADDRESS="node1.pg.svc", APIPORT="8009")
    assert conf["restapi"]["connect_address"] == "node1.pg.svc:8009"
    assert conf["postgresql"]["connect_address"] == "172.20.0.5:5432"
    with pytest.raises(EnvError, match="RESTAPI_CONNECT_ADDRESS"):
        load(RESTAPI_CONNECT_ADDRESS="a b")


@pytest.mark.parametrize("value, rendered", [
    (None, "en_US.UTF-8"), ("en_US", "en_US.UTF-8"), ("en_US.UTF-8", "en_US.UTF-8"), ("C", "C"),
])
def test_initdb_locale(value: str | None, rendered: str) -> None:
    env = {} if value is None else {"INITDB_LOCALE": value}
    initdb = agent(**env)["bootstrap"]["initdb"]
    assert {"locale": rendered} in initdb and {"encoding": "UTF8"} in initdb


def test_initdb_locale_missing_from_the_image() -> None:
    with pytest.raises(EnvError) as caught:
        load(INITDB_LOCALE="de_DE")
    assert "INITDB_LOCALE" in caught.value.line() and "de_DE.UTF-8" in caught.value.line()


@pytest.mark.parametrize("env, admin", [
    ({}, False), ({"PGPASSWORD_ADMIN": "s3cret"}, True), ({"USE_ADMIN": "true"}, True),
    ({"PGPASSWORD_ADMIN": "s3cret", "USE_ADMIN": "false"}, False),
])
def test_use_admin_as_in_spilo(env: dict[str, str], admin: bool) -> None:
    command = agent(**env)["bootstrap"]["post_bootstrap"]
    assert command.endswith("--admin") is admin


def test_pghome_moves_the_default_paths() -> None:
    s = load(PGHOME="/data/pg")
    assert (s.home, s.pgroot, s.pgdata) == ("/data/pg", "/data/pg/pgdata/pgroot", "/data/pg/pgdata/pgroot/data")


def test_logs_go_to_pg_log_as_csv_by_default() -> None:
    pg = agent()["postgresql"]
    params = pg["parameters"]
    assert params["logging_collector"] == "on" and params["log_destination"] == "csvlog"
    assert params["log_directory"] == "../pg_log"  # outside PGDATA: $PGROOT/pg_log
    assert params["log_filename"] == "postgresql-%u.log" and params["log_rotation_age"] == "1d"
    assert params["log_truncate_on_rotation"] == "on"
    assert "startup_log" not in pg  # the postmaster's first lines join the agent's output


def test_log_to_stdout() -> None:
    pg = agent(LOG_TO_STDOUT="true")["postgresql"]
    assert pg["parameters"]["logging_collector"] == "off" and pg["parameters"]["log_destination"] == "stderr"
    assert pg["startup_log"] == "/proc/1/fd/1"


def test_crontab() -> None:
    assert load().crontab == ()
    lines = load(CRONTAB='["*/5 * * * * vacuumdb -a -q", "0 3 * * 0 echo weekly"]').crontab
    assert lines == ("*/5 * * * * vacuumdb -a -q", "0 3 * * 0 echo weekly")
    for bad in ("not a list", '["* * * echo short"]', "[1, 2]"):
        with pytest.raises(EnvError, match="CRONTAB"):
            load(CRONTAB=bad)


SPILO_INI = """[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = *
listen_port = 6432
auth_type = md5
auth_file = /run/pgbouncer/userlist.txt
"""


def test_pgbouncer_spilo_ini_and_userlist_texts_are_written_as_given() -> None:
    s = load(PGBOUNCER_CONFIGURATION=SPILO_INI, PGBOUNCER_AUTHENTICATION='"app" "md5abc"\n"ro" "secret"')
    assert s.pgbouncer and s.pgbouncer_dir == "/run/pgbouncer"
    files = render.render_all(s)
    assert files["/run/pgbouncer/pgbouncer.ini"] == (SPILO_INI, 0o600)
    assert files["/run/pgbouncer/userlist.txt"][0] == '"app" "md5abc"\n"ro" "secret"\n'
    assert "command=pgbouncer /run/pgbouncer/pgbouncer.ini" in files["supervisord.conf"][0]


def test_pgbouncer_auth_alias_and_howdah_forms_still_work() -> None:
    s = load(PGBOUNCER_CONFIGURATION="pool_mode: transaction", PGBOUNCER_AUTH='"app" "pw"')
    files = render.render_all(s)
    assert files["userlist.txt"][0] == '"app" "pw"\n' and "pool_mode = transaction" in files["pgbouncer.ini"][0]
    assert load(PGBOUNCER="true", PGBOUNCER_AUTHENTICATION="md5").pgbouncer_auth == "md5"


@pytest.mark.parametrize("env", [
    {"PGBOUNCER_CONFIGURATION": "[databases]\n* = host=x\n"},  # no [pgbouncer] section
    {"PGBOUNCER": "true", "PGBOUNCER_AUTHENTICATION": "kerberos"},
])
def test_pgbouncer_bad_values_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(EnvError) as caught:
        load(**env)
    assert caught.value.line().split(":")[1].strip().split()[1] in env


def test_files_with_absolute_names_are_written_there(tmp_path: Path) -> None:
    elsewhere = tmp_path / "pgbouncer"
    elsewhere.mkdir()
    system.write_files(str(tmp_path / "run"), {f"{elsewhere}/pgbouncer.ini": ("[pgbouncer]\n", 0o600)})
    assert (elsewhere / "pgbouncer.ini").read_text() == "[pgbouncer]\n"
    assert not list(elsewhere.glob(".*.tmp"))
