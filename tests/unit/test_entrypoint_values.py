"""Validation: every bad variable raises EnvError naming it, with a one-line message."""
from __future__ import annotations

import pytest

from howdah.entrypoint import dcs, settings
from howdah.entrypoint.errors import EnvError
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(None))
CLUSTER = {"SCOPE": "demo", "ETCD_HOST": "etcd:2379"}


def load(**env: str) -> settings.Settings:
    return settings.load(env, FACTS)


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"PGPORT": "abc"}, "PGPORT"),
        ({"PGPORT": "70000"}, "PGPORT"),
        ({"APIPORT": "-1"}, "APIPORT"),
        ({"PGBOUNCER_PORT": "x"}, "PGBOUNCER_PORT"),
        ({"SPILO_CONFIGURATION": "a: [1"}, "SPILO_CONFIGURATION"),
        ({"HOWDAH_CONFIGURATION": "- a\n- b"}, "HOWDAH_CONFIGURATION"),
        ({"PGBOUNCER_CONFIGURATION": "{x"}, "PGBOUNCER_CONFIGURATION"),
        ({"PGBOUNCER_CONFIGURATION": "pool_mode: [a]"}, "PGBOUNCER_CONFIGURATION"),
        ({"SCOPE": "x", "ETCD_URL": "http://"}, "ETCD_URL"),
        ({"SCOPE": "x", "ETCD_URL": "etcd:2379"}, "ETCD_URL"),
        ({"SCOPE": "x", "ETCD_URL": "http://etcd:abc"}, "ETCD_URL"),
        ({"SCOPE": "x", "ETCD_HOST": ":2379"}, "ETCD_HOST"),
        ({"SCOPE": "x", "ETCD_HOST": "etcd:port"}, "ETCD_HOST"),
        ({"SCOPE": "x", "ETCD_HOSTS": "a:1,b:x"}, "ETCD_HOSTS"),
        ({"SCOPE": "x", "ETCD_HOSTS": ","}, "ETCD_HOSTS"),
        ({"SCOPE": "x", "ETCD_HOST": "a:1", "ETCD_URL": "http://b:2"}, "ETCD_URL"),
        ({"SCOPE": "x", "ETCD_HOST": "a", "ETCD_PROTOCOL": "ftp"}, "ETCD_PROTOCOL"),
        ({"SCOPE": "x", "ETCD_HOST": "a", "ETCD_USERNAME": "u"}, "ETCD_PASSWORD"),
        ({"ETCD_HOST": "etcd:2379"}, "SCOPE"),
        ({"PGVERSION": "fifteen"}, "PGVERSION"),
        ({"PGBOUNCER": "maybe"}, "PGBOUNCER"),
        ({"PGBOUNCER_AUTHENTICATION": "kerberos"}, "PGBOUNCER_AUTHENTICATION"),
        ({"PGUSER_ADMIN": "bad name;"}, "PGUSER_ADMIN"),
        ({"STANDBY_HOST": "p", "STANDBY_PORT": "x"}, "STANDBY_PORT"),
        ({"WAL_S3_BUCKET": "b", "BACKUP_NUM_TO_RETAIN": "0"}, "BACKUP_NUM_TO_RETAIN"),
        ({"SCOPE": "x", "ETCD_HOST": "a", "DCS_ENABLE_KUBERNETES_API": "true"}, "DCS_ENABLE_KUBERNETES_API"),
    ],
)
def test_bad_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(EnvError) as info:
        settings.load(env, FACTS)
    assert info.value.variable == variable
    line = info.value.line()
    assert "\n" not in line and variable in line and ";" in line


def test_defaults_one_container_demo() -> None:
    s = load()
    assert s.dcs.kind == "local" and s.local_etcd
    assert s.dcs.section() == {"etcd3": {"host": dcs.LOCAL_ETCD}}
    assert (s.scope, s.name, s.connect_host) == ("demo", "node1", "172.20.0.5")
    assert (s.pgport, s.apiport, s.pgbouncer) == (5432, 8008, False)
    assert s.pgdata == "/home/postgres/pgdata/pgroot/data"
    assert s.superuser.defaulted and s.superuser.name == "postgres"


@pytest.mark.parametrize(
    "env, section",
    [
        ({"ETCD_HOST": "etcd"}, {"host": "etcd:2379"}),
        ({"ETCD_HOST": "http://etcd:2379"}, {"host": "etcd:2379"}),
        ({"ETCD_HOSTS": "a:2379,b:2380"}, {"hosts": ["a:2379", "b:2380"]}),
        ({"ETCD_HOSTS": "'a:2379','b:2379'"}, {"hosts": ["a:2379", "b:2379"]}),
        ({"ETCD_HOSTS": "[a:1, b:2]"}, {"hosts": ["a:1", "b:2"]}),
        ({"ETCD_HOSTS": "[::1]:2379"}, {"hosts": ["[::1]:2379"]}),
        ({"ETCD_URL": "https://etcd:2379/", "ETCD_PROTOCOL": "https"}, {"url": "https://etcd:2379", "protocol": "https"}),
        ({"ETCD_HOST": "e", "ETCD_USERNAME": "u", "ETCD_PASSWORD": "p"}, {"host": "e:2379", "username": "u", "password": "p"}),
    ],
)
def test_etcd_forms(env: dict[str, str], section: dict) -> None:
    assert load(SCOPE="c", **env).dcs.section() == {"etcd": section}


def test_kubernetes() -> None:
    s = load(SCOPE="c", DCS_ENABLE_KUBERNETES_API="true", POD_NAMESPACE="db", POD_IP="10.1.2.3", POD_NAME="c-0")
    assert s.dcs.kind == "kubernetes" and s.dcs.section()["kubernetes"]["namespace"] == "db"
    assert (s.name, s.connect_host) == ("c-0", "10.1.2.3")


def test_users_passwords_and_switches() -> None:
    s = load(**CLUSTER, PGUSER_SUPERUSER="root_pg", PGPASSWORD_SUPERUSER="s3cr'et", PGPASSWORD_STANDBY="r",
             PGBOUNCER="true", PGPORT="6543", NAMESPACE="svc")
    assert (s.superuser.name, s.superuser.password, s.superuser.defaulted) == ("root_pg", "s3cr'et", False)
    assert s.standby.password == "r" and s.pgbouncer and s.pgport == 6543 and s.namespace == "/svc"


def test_pgbouncer_configuration_switches_it_on() -> None:
    s = load(PGBOUNCER_CONFIGURATION="pool_mode: transaction\ndatabases: {app: host=x}")
    assert s.pgbouncer and s.pgbouncer_settings["pool_mode"] == "transaction"
    assert not load(PGBOUNCER_CONFIGURATION="pool_mode: x", PGBOUNCER="false").pgbouncer


def test_s3_turns_on_pgbackrest() -> None:
    s = load(WAL_S3_BUCKET="bk", AWS_ENDPOINT="minio:9000", AWS_S3_FORCE_PATH_STYLE="true")
    assert s.pgbackrest and s.repo is not None and s.repo.option("s3-endpoint") == "minio" and s.repo.option("s3-uri-style") == "path"


@pytest.mark.parametrize("variable, value", [
    ("PGPASSWORD_SUPERUSER", "pw\nlocal all all trust"),
    ("PGPASSWORD_ADMIN", "a\r\nb"),
    ("PGUSER_ADMIN", "x\x00"),
    ("ETCD_HOST", "etcd:2379\n[program:evil]"),
    ("WAL_S3_BUCKET", "b\nrepo1-path=/etc"),
    ("CALLBACK_SCRIPT", "/bin/true\ncommand=sh"),
    ("AWS_REGION", "us-east-1\u2028x"),
    ("PGBOUNCER_CONFIGURATION", "pool_mode: \"session\\nauth_type = trust\""),
    ("PGBOUNCER_CONFIGURATION", "databases: {app: \"host=x\\n* = host=evil\"}"),
])
def test_line_breaking_values_are_refused(variable: str, value: str) -> None:
    with pytest.raises(EnvError) as info:
        load(**{**CLUSTER, "WAL_S3_BUCKET": "bk", variable: value})
    assert info.value.variable == variable
    assert "\n" not in info.value.line() and "control character" in info.value.line()


def test_pem_content_may_span_lines() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    load(SSL_CERTIFICATE=pem, SSL_PRIVATE_KEY=pem.replace("CERTIFICATE", "PRIVATE KEY"))  # no error


@pytest.mark.parametrize("env, variable", [
    ({"SCOPE": "a/b"}, "SCOPE"), ({"SCOPE": "-x"}, "SCOPE"), ({"SCOPE": "x" * 64}, "SCOPE"),
    ({"SCOPE": "white space"}, "SCOPE"), ({"POD_NAME": "../n1"}, "POD_NAME"), ({"POD_NAME": "n 1"}, "POD_NAME"),
])
def test_scope_and_member_names_are_validated(env: dict[str, str], variable: str) -> None:
    with pytest.raises(EnvError) as info:
        load(**{**CLUSTER, **env})
    assert info.value.variable == variable


def test_usual_names_pass() -> None:
    s = load(SCOPE="my-cluster_1.prod", ETCD_HOST="etcd", POD_NAME="my-cluster-0")
    assert (s.scope, s.name) == ("my-cluster_1.prod", "my-cluster-0")
