"""Conformance with Patroni 4.1.5: client certificates on every PostgreSQL
connection (issue 9, item 2). pg_hba accepts TCP connections only with TLS and
a client certificate of the test CA (hostssl ... clientcert=verify-ca); the
agents connect with the libpq keys of postgresql.authentication.<role>. A
leader and a streaming replica prove the agent's own connection, pg_basebackup
primary_conninfo and post_bootstrap's URL; a replica made by a custom replica method
(its --connstring) and an old primary brought back with pg_rewind prove the clone
scripts and pg_rewind; the same YAML on both agents.
"""
from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

import psycopg2

from harness import AgentNode, LocalCluster, wait_until
from harness.config import PG_BIN
from harness.tls import TestCA, have_openssl

pytestmark = [pytest.mark.local, pytest.mark.patroni, pytest.mark.own_dcs,
              pytest.mark.timeout(600),
              pytest.mark.skipif(not have_openssl(), reason="no openssl")]
KINDS = ["patroni", "howdah"]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
HBA = ["local all all trust",
       "hostssl replication replicator 127.0.0.1/32 md5 clientcert=verify-ca",
       "hostssl all all 127.0.0.1/32 md5 clientcert=verify-ca"]


def tls_config(ca: TestCA) -> dict[str, Any]:
    """TLS on the server, a client certificate in every role's libpq keys, and a pg_hba
    that lets TCP connections in only with TLS and a certificate of the CA."""
    server = ca.issue("server", cn="127.0.0.1")
    client = ca.issue("client", cn="client", client=True)
    keys = {"sslmode": "verify-ca", "sslrootcert": ca.cert,
            "sslcert": client.cert, "sslkey": client.key}
    return {"bootstrap": {"pg_hba": HBA}, "postgresql": {
        "authentication": {role: keys for role in ("superuser", "replication", "rewind")},
        "parameters": {"ssl": "on", "ssl_cert_file": server.cert, "ssl_key_file": server.key,
                       "ssl_ca_file": ca.cert}}}


def script_dir() -> Path:
    scripts = Path(tempfile.mkdtemp(prefix="howdah-pg-tls-"))
    scripts.chmod(0o777)  # the agents may run as another user than the test
    return scripts


def local_sql(node: AgentNode, query: str) -> list[tuple[Any, ...]]:
    """A statement over the node's unix socket (TCP needs the client certificate)."""
    conn = psycopg2.connect(host=str(node.workdir), port=node.pg_port, dbname="postgres",
                            user="postgres", connect_timeout=3)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_cluster_forms_with_hostssl_clientcert_verify_ca(
        kind: str, patroni_venv: Any, local_cluster: Callable[..., LocalCluster]) -> None:
    with TestCA() as ca:
        # post_bootstrap gets a URL it can use over TCP: here only with the client certificate
        scripts = script_dir()
        script, ran = scripts / "post_bootstrap.sh", scripts / "ran"
        script.write_text(f"#!/bin/sh\npsql \"$1\" -v ON_ERROR_STOP=1 "
                          f"-c 'CREATE TABLE post_bootstrap_ran (url_ok bool)' && touch {ran}\n")
        script.chmod(0o755)
        extra = tls_config(ca)
        extra["bootstrap"]["post_bootstrap"] = f"/bin/sh {script}"
        cluster = local_cluster(2, kind=kind, extra=extra, dcs="etcd3", **FAST)
        leader = cluster.wait_leader(timeout=180)
        assert ran.exists(), "post_bootstrap could not connect with the URL it was given"
        rules = [" ".join(line.split()) for line in (leader.data_dir / "pg_hba.conf")
                 .read_text().splitlines() if line.strip() and not line.startswith("#")]
        if kind == "howdah":  # different on purpose: bootstrap.pg_hba alone after initdb
            assert rules == HBA, rules
        else:  # Patroni appends it to initdb's file, whose trust lines match first
            assert rules[-len(HBA):] == HBA and "host all all 127.0.0.1/32 trust" in rules, rules
        replica = next(n for n in cluster.nodes if n is not leader)
        wait_until(lambda: replica.role() == "replica" and
                   (replica.api("/replica")[0] == 200), 240,
                   what=f"{kind} replica streams over TLS", details=cluster.dump_logs)
        wait_until(lambda: any(r.get("application_name") == replica.name and
                               r.get("state") == "streaming"
                               for r in (leader.api("/patroni")[1] or {}).get("replication", [])),
                   120, what="the leader lists the streaming replica", details=cluster.dump_logs)


# a custom replica method: pg_basebackup from the --connstring it is given (PGPASSFILE for
# the password), recording which data directory it made
CLONE = """#!/bin/sh
set -e
for a in "$@"; do
  case "$a" in --datadir=*) dir="${{a#--datadir=}}";; --connstring=*) dsn="${{a#--connstring=}}";;
  esac
done
echo "$dir" >> {made}
{bin}/pg_basebackup -D "$dir" -X stream -c fast -d "$dsn"
"""


@pytest.mark.parametrize("kind", [
    # Patroni's side: in CI and one local run on 2026-12-04 the old primary still had the table
    # written after the replica's walreceiver was stopped (not rewound away); not yet
    # explained (Howdah's side passed every run), so reported, not hidden
    pytest.param("patroni", marks=pytest.mark.xfail(strict=False, reason="Patroni's old "
                 "primary kept the diverged table in 2 runs (2026-12-04): unexplained")),
    "howdah"])
def test_a_clone_script_and_pg_rewind_connect_with_the_client_certificate(
        kind: str, patroni_venv: Any, local_cluster: Callable[..., LocalCluster]) -> None:
    with TestCA() as ca:
        scripts = script_dir()
        script, made = scripts / "clone.sh", scripts / "made"
        script.write_text(CLONE.format(made=made, bin=PG_BIN))
        script.chmod(0o755)
        extra = tls_config(ca)
        extra["postgresql"].update(create_replica_methods=["tlsclone"],
                                   tlsclone={"command": f"/bin/sh {script}"})
        cluster = local_cluster(2, kind=kind, extra=extra, dcs="etcd3", **FAST)
        leader = cluster.wait_leader(timeout=180)
        replica = next(n for n in cluster.nodes if n is not leader)
        wait_until(lambda: replica.role() == "replica" and replica.api("/replica")[0] == 200,
                   240, what=f"{kind}: the cloned replica streams", details=cluster.dump_logs)
        assert made.read_text().split() == [str(replica.data_dir)], "made by the clone script"

        # the old primary goes on alone: writes the replica never receives (its walreceiver
        # stopped), then the node dies; the replica takes over, and the old primary can
        # only come back with pg_rewind (from the new leader, over TLS with the rewind keys)
        receiver = wait_until(lambda: [r[0] for r in local_sql(
            replica, "SELECT pid FROM pg_stat_wal_receiver WHERE status = 'streaming'")], 120,
            what=f"{kind}: the replica's walreceiver streams", details=cluster.dump_logs)[0]
        os.kill(receiver, signal.SIGSTOP)
        try:
            local_sql(leader, "CREATE TABLE diverged AS SELECT 1 AS x")
            local_sql(leader, "CHECKPOINT")
            leader.kill9()
        finally:
            os.kill(receiver, signal.SIGCONT)
        new = cluster.wait_leader(180, exclude=[leader.name])
        assert new is replica
        leader.start()
        wait_until(lambda: leader.role() == "replica" and leader.api("/replica")[0] == 200, 300,
                   what=f"{kind}: the old primary rewound and streams", details=cluster.dump_logs)
        assert local_sql(leader, "SELECT to_regclass('diverged') IS NULL") == [(True,)]
        assert made.read_text().split() == [str(replica.data_dir)], "rewound, not cloned again"
        log = leader.log_text(100000)
        assert "pg_rewind: Done!" in log, log[-3000:]  # pg_rewind's own output, in both logs
