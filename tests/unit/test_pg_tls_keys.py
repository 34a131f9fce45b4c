"""libpq TLS/GSS keys of postgresql.authentication.<role> reach every connection."""
from __future__ import annotations

from pathlib import Path

from howdah.pg import conf
from howdah.pg.instance import Instance, _libpq_major

TLS = {"sslmode": "verify-ca", "sslcert": "/c/client.crt", "sslkey": "/c/client.key",
       "sslrootcert": "/c/ca.crt", "sslnegotiation": "direct", "channel_binding": "require"}


def instance(tmp_path: Path) -> Instance:
    auth = {"superuser": {"username": "postgres", "password": "p", **TLS},
            "replication": {"username": "rep", "password": "r", **TLS, "sslmode": "require"},
            "rewind": {"username": "rew", "password": "w", "gssencmode": "disable"}}
    return Instance("n1", {"data_dir": str(tmp_path / "data"), "listen": "127.0.0.1:5432",
                           "bin_dir": str(tmp_path / "nobin"), "authentication": auth})


def test_own_connection_uses_the_superuser_keys(tmp_path: Path) -> None:
    params = instance(tmp_path).db.params
    assert {k: params[k] for k in ("sslmode", "sslcert", "sslkey", "sslrootcert",
                                   "channel_binding")} == {k: TLS[k] for k in (
        "sslmode", "sslcert", "sslkey", "sslrootcert", "channel_binding")}
    # sslnegotiation only where psycopg2's libpq knows it (17+)
    assert ("sslnegotiation" in params) == (_libpq_major() >= 17)


def test_primary_conninfo_uses_the_replication_keys(tmp_path: Path) -> None:
    pg = instance(tmp_path)
    text = conf.upstream_conninfo("postgres://10.0.0.1:5433/postgres", pg.replication, "n1",
                                  "/p", 17)
    assert "sslmode=require" in text and "sslcert=/c/client.crt" in text
    assert "sslnegotiation=direct" in text and "sslmode=prefer" not in text
    assert "sslnegotiation" not in conf.upstream_conninfo(
        "postgres://10.0.0.1:5433/postgres", pg.replication, "n1", "/p", 15)


def test_rewind_keys_and_no_keys(tmp_path: Path) -> None:
    pg = instance(tmp_path)
    assert pg.rewind_user is not None and pg.rewind_user.tls_options() == {"gssencmode": "disable"}
    assert conf.Credentials("u", None).tls_options() == {}
