"""Custom bootstrap methods: the method's arguments (Patroni's rule), the recovery settings a
restore tool leaves in postgresql.auto.conf, and pg_hba.conf while the roles are reset."""
from __future__ import annotations

from pathlib import Path

import pytest

from howdah.pg import conf, methods

DATA = Path("/data/pg")


def test_scope_datadir_then_the_methods_own_keys() -> None:
    spec = {"command": "/bin/restore --fast", "stanza": "src", "recovery_conf": {"a": 1},
            "keep_existing_recovery_conf": True, "no_params": False}
    assert methods.bootstrap_argv("m", spec, "clone", DATA) == [
        "/bin/restore", "--fast", "--scope=clone", "--datadir=/data/pg", "--stanza=src"]


def test_no_params_still_passes_the_methods_own_keys() -> None:
    spec = {"command": "/bin/restore", "no_params": True, "pgdata": "/x", "scope": "s",
            "datadir": "/d"}
    assert methods.bootstrap_argv("m", spec, "clone", DATA) == ["/bin/restore", "--pgdata=/x"]


def test_a_method_without_command_is_refused() -> None:
    with pytest.raises(methods.MethodError, match="bootstrap.m.command is required"):
        methods.bootstrap_argv("m", {"no_params": True}, "clone", DATA)


def test_recovery_settings_leave_auto_conf(tmp_path: Path) -> None:
    auto = tmp_path / "postgresql.auto.conf"
    auto.write_text("# Do not edit\nwork_mem = '8MB'\nprimary_conninfo = 'host=src'\n"
                    "Recovery_Target_Name = 'mark'\n# restore_command = 'kept comment'\n")
    assert conf.strip_auto_conf_recovery(tmp_path) == ["primary_conninfo", "recovery_target_name"]
    assert auto.read_text() == "# Do not edit\nwork_mem = '8MB'\n# restore_command = 'kept comment'\n"
    assert conf.strip_auto_conf_recovery(tmp_path) == []
    assert conf.strip_auto_conf_recovery(tmp_path / "missing") == []


def test_bootstrap_hba_trusts_only_the_agents_users_locally() -> None:
    lines = conf.bootstrap_hba("postgres", "Repl User", ["127.0.0.1", "::1"])
    assert lines == (
        'local replication "Repl User" trust', "local all postgres trust",
        'host replication "Repl User" 127.0.0.1/32 trust', "host all postgres 127.0.0.1/32 trust",
        'host replication "Repl User" ::1/128 trust', "host all postgres ::1/128 trust")
    assert conf.addresses("/var/run/postgresql") == []
    assert conf.addresses("127.0.0.1") == ["127.0.0.1"]


def test_post_bootstrap_url_carries_the_superusers_tls_options() -> None:
    from howdah.pg.bootstrap import local_url
    params = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "secret",
              "dbname": "postgres", "sslmode": "verify-ca", "sslcert": "/certs/su.crt",
              "sslkey": "/certs/su.key", "sslrootcert": "/certs/ca.crt"}
    url = local_url(params)
    assert url == ("postgres://postgres@127.0.0.1:5432/postgres?sslmode=verify-ca"
                   "&sslcert=%2Fcerts%2Fsu.crt&sslkey=%2Fcerts%2Fsu.key&sslrootcert=%2Fcerts%2Fca.crt")
    assert "secret" not in url
    import psycopg2.extensions
    parsed = psycopg2.extensions.parse_dsn(url)
    assert parsed["sslcert"] == "/certs/su.crt" and parsed["sslmode"] == "verify-ca"


def test_post_bootstrap_url_without_tls_is_plain() -> None:
    from howdah.pg.bootstrap import local_url
    assert local_url({"host": "127.0.0.1", "port": 5432, "user": "postgres"}) == \
        "postgres://postgres@127.0.0.1:5432/postgres"
