"""Spilo's variables in the real image: TLS certificates given as PEM text (and reloaded when the
files change), the en_US.UTF-8 locale, logs in $PGDATA/../pg_log, CRONTAB, and a pgbouncer.ini /
userlist.txt text."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from harness.tls import TestCA

from .helpers import sql, wait_for
from .test_single import run  # noqa: F401 - the fixture

pytestmark = [pytest.mark.compose, pytest.mark.timeout(420)]

PGROOT = "/home/postgres/pgdata/pgroot"
INI = """[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = *
listen_port = 6432
unix_socket_dir = /var/run/postgresql
auth_type = md5
auth_file = /run/pgbouncer/userlist.txt
"""


def served_cn(port: int) -> str:
    """The CN of the certificate PostgreSQL presents on the port (openssl -starttls postgres)."""
    done = subprocess.run(["openssl", "s_client", "-starttls", "postgres", "-connect", f"127.0.0.1:{port}"],
                          input="", capture_output=True, text=True, timeout=20)
    for line in done.stdout.splitlines():
        if line.strip().startswith("subject=") or line.strip().startswith("0 s:"):
            return line.split("CN", 1)[-1].lstrip(" =").split(",")[0].strip()
    return ""


def sh(container: Any, script: str) -> str:
    result = container.exec_run(["sh", "-c", script])
    return str(result.output.decode())


def test_spilo_tls_locale_logs_cron_and_pgbouncer_texts(run: Any, tmp_path: Path) -> None:  # noqa: F811
    ca = TestCA(tmp_path / "ca")
    first, second = ca.issue("first", cn="first-cert"), ca.issue("second", cn="second-cert")
    env = {
        "PGPASSWORD_SUPERUSER": "postgres",
        "SSL_CERTIFICATE": Path(first.cert).read_text(), "SSL_PRIVATE_KEY": Path(first.key).read_text(),
        "SSL_CA": Path(ca.cert).read_text(),
        "CRONTAB": '["* * * * * date >> /home/postgres/pgdata/cron.out"]',
        "PGBOUNCER_CONFIGURATION": INI, "PGBOUNCER_AUTHENTICATION": '"postgres" "postgres"',
    }
    container, ports = run(env)
    wait_for("a writable primary", lambda: sql(ports[5432], "create table if not exists t(x int)") == [], timeout=90)

    # the given certificate is served, and it verifies against the given CA
    assert served_cn(ports[5432]) == "first-cert"
    conn = psycopg2.connect(host="localhost", port=ports[5432], user="postgres", password="postgres",
                            dbname="postgres", sslmode="verify-full", sslrootcert=ca.cert, connect_timeout=5)
    with conn.cursor() as cur:
        cur.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        assert cur.fetchone() == (True,)
        cur.execute("select datcollate from pg_database where datname = 'postgres'")
        assert cur.fetchone() == ("en_US.UTF-8",)  # INITDB_LOCALE's default, as in Spilo
        cur.execute("show ssl_ca_file")
        assert cur.fetchone() == ("/run/howdah/ssl/ca.crt",)
    conn.close()

    # logs: CSV files in $PGDATA/../pg_log, nothing growing in the data directory
    listing = wait_for("a CSV log in pg_log", lambda: (out := sh(container, f"ls {PGROOT}/pg_log")) and ".csv" in out and out,
                       timeout=30)
    assert "postgresql-" in listing
    assert "pg_ctl.log" not in sh(container, f"ls {PGROOT}/data")

    # pgbouncer from Spilo's texts: the ini as given, the userlist where its auth_file points
    rows = wait_for("pgbouncer on 6432", lambda: sql(ports[6432], "select 1"), timeout=30)
    assert rows == [(1,)]

    # rotate the certificate files in place: PostgreSQL serves the new one without a restart
    pid_before = sql(ports[5432], "select pg_postmaster_start_time()")
    for source, target in ((second.cert, "/run/howdah/ssl/server.crt"), (second.key, "/run/howdah/ssl/server.key")):
        text = Path(source).read_text()
        result = container.exec_run(["python3", "-c", f"open({target!r}, 'w').write({text!r})"], user="postgres")
        assert result.exit_code == 0, result.output
    wait_for("the new certificate served", lambda: served_cn(ports[5432]) == "second-cert", timeout=90, interval=2)
    assert sql(ports[5432], "select pg_postmaster_start_time()") == pid_before, "reloaded, not restarted"

    # CRONTAB: the line runs as postgres within a minute or so
    wait_for("the CRONTAB line to run", lambda: sh(container, "cat /home/postgres/pgdata/cron.out 2>/dev/null").strip(),
             timeout=150, interval=5)
    assert "howdah-cron" in container.logs().decode(errors="replace")
