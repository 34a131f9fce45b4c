"""Replication and rewind connections verify the server when a CA is configured (issue 14
item 4): the entrypoint gives the replication and rewind users sslmode verify-ca and SSL_CA as
their root certificate when PostgreSQL's certificate is the operator's; the agent reads a root
certificate without an sslmode as verify-ca in primary_conninfo, pg_basebackup and pg_rewind."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from howdah.entrypoint import render, settings
from howdah.entrypoint.memory import sizing
from howdah.pg import conf
from howdah.pg.instance import Instance

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(2 * 1024 ** 3),
                       locales=("C", "C.utf8", "POSIX", "en_US.utf8"))
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"


def auth(**env: str) -> dict[str, Any]:
    text = render.render_all(settings.load(env, FACTS))["howdah.yml"][0]
    return dict(yaml.safe_load(text)["postgresql"]["authentication"])


@pytest.mark.parametrize("env", [
    {"SSL_CA": CERT, "SSL_CERTIFICATE": CERT, "SSL_PRIVATE_KEY": KEY},
    {"SSL_CA_FILE": "/certs/ca.crt", "SSL_CERTIFICATE_FILE": "/certs/pg.crt", "SSL_PRIVATE_KEY_FILE": "/certs/pg.key"},
])
def test_a_ca_and_own_certificate_make_replication_and_rewind_verify_ca(env: dict[str, str]) -> None:
    a = auth(**env)
    ca = "/run/howdah/ssl/ca.crt" if "SSL_CA" in env else "/certs/ca.crt"
    for role in ("replication", "rewind"):
        assert a[role]["sslmode"] == "verify-ca" and a[role]["sslrootcert"] == ca, a[role]
    assert "sslmode" not in a["superuser"], "the agent's own local connection is unchanged"


@pytest.mark.parametrize("env", [{}, {"SSL_CA": CERT}, {"SSL_CERTIFICATE": CERT, "SSL_PRIVATE_KEY": KEY}])
def test_no_ca_or_the_self_signed_certificate_leave_sslmode_alone(env: dict[str, str]) -> None:
    # without a CA there is nothing to verify against; the self-signed certificate made at
    # start is no CA's, so verifying it would stop replication
    a = auth(**env)
    assert all("sslmode" not in a[role] and "sslrootcert" not in a[role] for role in a), a


def test_a_root_certificate_without_sslmode_is_verify_ca() -> None:
    c = conf.Credentials("rep", "pw", (("sslrootcert", "/ca.crt"),))
    assert c.tls_options() == {"sslrootcert": "/ca.crt", "sslmode": "verify-ca"}
    text = conf.upstream_conninfo("postgres://10.0.0.1:5432/postgres", c, "n1", "/p", 17)
    assert "sslmode=verify-ca" in text and "sslmode=prefer" not in text
    full = conf.Credentials("rep", "pw", (("sslrootcert", "/ca.crt"), ("sslmode", "verify-full")))
    assert full.tls_options()["sslmode"] == "verify-full", "an explicit sslmode is kept"
    assert "sslmode=prefer" in conf.upstream_conninfo("postgres://h:1/postgres", conf.Credentials("r", "p"),
                                                      "n1", "/p", 17), "no root certificate: prefer, as Patroni"


def test_rewind_and_peer_connections_use_the_verified_options(tmp_path: Path) -> None:
    root = {"sslrootcert": "/ca.crt"}
    pg = Instance("n1", {"data_dir": str(tmp_path / "data"), "listen": "127.0.0.1:5432",
                         "bin_dir": str(tmp_path / "nobin"), "pgpass": str(tmp_path / "pgpass"),
                         "authentication": {"superuser": {"username": "postgres", "password": "s"},
                                            "replication": {"username": "rep", "password": "r", **root},
                                            "rewind": {"username": "rew", "password": "w", **root}}})
    assert pg.rewind_user is not None and pg.rewind_user.tls_options()["sslmode"] == "verify-ca"
    peer = pg._peer_db("postgres://10.0.0.2:5432/postgres").params
    assert peer["user"] == "rep" and peer["sslmode"] == "verify-ca", peer
    assert "sslmode" not in pg.db.params
