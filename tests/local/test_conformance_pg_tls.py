"""Conformance with Patroni 4.1.5: client certificates on every PostgreSQL
connection (issue 9, item 2). pg_hba accepts TCP connections only with TLS and
a client certificate of the test CA (hostssl ... clientcert=verify-ca); the
agents connect with the libpq keys of postgresql.authentication.<role>. A
leader and a streaming replica prove the agent's own connection, pg_basebackup
primary_conninfo and post_bootstrap's URL; the same YAML on both agents.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

from harness import LocalCluster, wait_until
from harness.tls import TestCA, have_openssl

pytestmark = [pytest.mark.local, pytest.mark.patroni, pytest.mark.own_dcs,
              pytest.mark.timeout(600),
              pytest.mark.skipif(not have_openssl(), reason="no openssl")]
KINDS = ["patroni", "howdah"]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}


@pytest.mark.parametrize("kind", KINDS)
def test_a_cluster_forms_with_hostssl_clientcert_verify_ca(
        kind: str, patroni_venv: Any, local_cluster: Callable[..., LocalCluster]) -> None:
    with TestCA() as ca:
        server = ca.issue("server", cn="127.0.0.1")
        client = ca.issue("client", cn="client", client=True)
        keys = {"sslmode": "verify-ca", "sslrootcert": ca.cert,
                "sslcert": client.cert, "sslkey": client.key}
        auth = {role: keys for role in ("superuser", "replication", "rewind")}
        # post_bootstrap gets a URL it can use over TCP: here only with the client certificate
        scripts = Path(tempfile.mkdtemp(prefix="howdah-post-bootstrap-"))
        scripts.chmod(0o777)  # the agents may run as another user than the test
        script, ran = scripts / "post_bootstrap.sh", scripts / "ran"
        script.write_text(f"#!/bin/sh\npsql \"$1\" -v ON_ERROR_STOP=1 "
                          f"-c 'CREATE TABLE post_bootstrap_ran (url_ok bool)' && touch {ran}\n")
        script.chmod(0o755)
        extra = {
            "bootstrap": {"post_bootstrap": f"/bin/sh {script}", "pg_hba": [
                "local all all trust",
                "hostssl replication replicator 127.0.0.1/32 md5 clientcert=verify-ca",
                "hostssl all all 127.0.0.1/32 md5 clientcert=verify-ca",
            ]},
            "postgresql": {"authentication": auth, "parameters": {
                "ssl": "on", "ssl_cert_file": server.cert, "ssl_key_file": server.key,
                "ssl_ca_file": ca.cert}},
        }
        cluster = local_cluster(2, kind=kind, extra=extra, dcs="etcd3", **FAST)
        leader = cluster.wait_leader(timeout=180)
        assert ran.exists(), "post_bootstrap could not connect with the URL it was given"
        replica = next(n for n in cluster.nodes if n is not leader)
        wait_until(lambda: replica.role() == "replica" and
                   (replica.api("/replica")[0] == 200), 240,
                   what=f"{kind} replica streams over TLS", details=cluster.dump_logs)
        wait_until(lambda: any(r.get("application_name") == replica.name and
                               r.get("state") == "streaming"
                               for r in (leader.api("/patroni")[1] or {}).get("replication", [])),
                   120, what="the leader lists the streaming replica", details=cluster.dump_logs)
