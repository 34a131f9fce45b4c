"""Replication and rewind connections verify the server when a CA is configured (issue 14
item 4): `sslrootcert` in postgresql.authentication.replication/rewind without an `sslmode`
means verify-ca (libpq's default, prefer, would not look at the root certificate).

A two-node Howdah cluster whose servers have certificates of a test CA streams with the CA as
the replication and rewind users' root certificate (over TLS: the leader's pg_stat_ssl says
so); the same connections with another CA's root certificate are refused before any password
is sent (pg_basebackup, and the rewind user's libpq options); and a server that offers no TLS
at all (a password collector posing as a member) gets nothing.  A deliberate difference:
Patroni keeps sslmode=prefer there, so a replica would stream from an unverified server.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import psycopg2
import pytest

from harness import LocalCluster, wait_until
from harness.collector import PasswordCollector
from harness.config import PG_BIN, REPLICATION, REWIND
from harness.tls import TestCA, have_openssl
from howdah.pg import clone, conf, ctl


pytestmark = [pytest.mark.local, pytest.mark.own_dcs, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_openssl(), reason="no openssl")]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}


def test_replication_and_rewind_verify_the_server(local_cluster: Callable[..., LocalCluster],
                                                  tmp_path: Path) -> None:
    with TestCA() as ca, TestCA(cn="rogue-ca") as rogue:
        server = ca.issue("server", cn="127.0.0.1")
        root = {"sslrootcert": ca.cert}
        extra = {"postgresql": {"authentication": {"replication": root, "rewind": root},
                                "parameters": {"ssl": "on", "ssl_cert_file": server.cert,
                                               "ssl_key_file": server.key}}}
        cluster = local_cluster(2, kind="howdah", extra=extra, dcs="etcd3", **FAST)
        leader = cluster.wait_leader(timeout=180)
        replica = next(n for n in cluster.nodes if n is not leader)
        wait_until(lambda: replica.role() == "replica" and replica.api("/replica")[0] == 200, 240,
                   what="the replica streams", details=cluster.dump_logs)
        text = (replica.spec.workdir / "data" / "postgresql.conf").read_text()
        primary_conninfo = next(line for line in text.splitlines() if line.startswith("primary_conninfo"))
        assert "sslmode=verify-ca" in primary_conninfo and ca.cert in primary_conninfo, primary_conninfo
        rows = wait_until(lambda: leader.sql(
            "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) "
            "WHERE r.application_name = %s AND r.state = 'streaming'", (replica.name,)), 120,
            what="the walsender of the replica", details=cluster.dump_logs)
        assert rows == [(True,)], rows

        source = f"postgres://127.0.0.1:{leader.pg_port}/postgres"
        pgpass = tmp_path / "pgpass"
        conf.write_pgpass(pgpass, [("127.0.0.1", leader.pg_port, conf.Credentials(*REPLICATION))])
        paths = ctl.PgPaths(tmp_path / "copy", PG_BIN)
        wrong = conf.Credentials(REPLICATION[0], REPLICATION[1], (("sslrootcert", rogue.cert),))
        assert clone.basebackup(paths, source, wrong, pgpass, [], "probe") is False
        right = conf.Credentials(REPLICATION[0], REPLICATION[1], (("sslrootcert", ca.cert),))
        assert clone.basebackup(paths, source, right, pgpass, [], "probe") is True

        def rewind_connect(cert: str) -> str:
            creds = conf.Credentials(REWIND[0], REWIND[1], (("sslrootcert", cert),))
            try:
                psycopg2.connect(host="127.0.0.1", port=leader.pg_port, user=creds.username,
                                 password=creds.password, dbname="postgres", connect_timeout=10,
                                 **creds.tls_options()).close()
                return "connected"
            except psycopg2.Error as exc:
                return str(exc)
        refused = rewind_connect(rogue.cert)
        assert "certificate verify failed" in refused, refused
        assert "certificate verify failed" not in rewind_connect(ca.cert)

        collector = PasswordCollector()
        try:
            assert clone.basebackup(ctl.PgPaths(tmp_path / "forged", PG_BIN), collector.url, right,
                                    pgpass, [], "probe") is False
            assert collector.got == [] and collector.users == [], "nothing to a server that offers no TLS"
        finally:
            collector.close()
