"""pgpass lines are scoped to the servers the agent connects to (issue 14 item 4): a forged
member key pointing at a server that asks for the password in clear text (libpq then sends
whatever it has) collects no superuser password.

The "attacker" is a socket on 127.0.0.2 speaking just enough of PostgreSQL's protocol to ask
for a cleartext password and record it.  The agent's own code runs against it with the real
libpq and the real pg_basebackup: the queries a switchover target or an upstream gets, a clone
from a member (a forged `clonefrom` member), and a tool run with the agent's PGPASSFILE (a
custom replica method or bootstrap script connecting as the superuser).
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from harness.collector import PasswordCollector
from harness.config import PG_BIN
from howdah.pg import conf
from howdah.pg.instance import Instance

pytestmark = pytest.mark.local
SUPERUSER_PW, REPLICATION_PW = "su-secret-7f3a", "rep-secret-91c2"


@pytest.fixture
def collector() -> Iterator[PasswordCollector]:
    c = PasswordCollector()
    yield c
    c.close()


def instance(tmp_path: Path) -> Instance:
    auth = {"superuser": {"username": "postgres", "password": SUPERUSER_PW},
            "replication": {"username": "replicator", "password": REPLICATION_PW}}
    return Instance("n1", {"data_dir": str(tmp_path / "data"), "listen": "0.0.0.0:5432",
                           "connect_address": "10.0.0.1:5432", "bin_dir": str(PG_BIN),
                           "pgpass": str(tmp_path / "pgpass"), "authentication": auth,
                           "parameters": {"unix_socket_directories": str(tmp_path)}})


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


def test_pgpass_names_the_servers_not_wildcards(tmp_path: Path) -> None:
    pg = instance(tmp_path)
    own = lines(pg.pgpass)
    assert own and not any(line.startswith("*") or line.split(":")[1] == "*" for line in own), own
    hosts = {line.rsplit(":", 4)[0] for line in own}
    assert hosts == {"localhost", "127.0.0.1", "\\:\\:1", "10.0.0.1", str(tmp_path)}, hosts
    assert all(":5432:*:" in line for line in own)
    assert (pg.pgpass.stat().st_mode & 0o777) == 0o600
    # following an upstream: its host and port, for the replication user alone
    pg._scope_pgpass("upstream", "postgres://10.0.0.9:5433/postgres", pg.replication)
    added = [line for line in lines(pg.pgpass) if line not in own]
    assert added == [f"10.0.0.9:5433:*:replicator:{REPLICATION_PW}"], added
    assert not any(SUPERUSER_PW in line and not line.startswith(tuple(h for h in hosts))
                   for line in lines(pg.pgpass))
    pg._scope_pgpass("upstream", None, None)
    assert lines(pg.pgpass) == own


def test_a_forged_member_collects_no_superuser_password(tmp_path: Path,
                                                        collector: PasswordCollector) -> None:
    pg = instance(tmp_path)
    # what a switchover target and an upstream are asked (received WAL, our slot)
    assert pg.remote_received(collector.url) is None
    assert pg._create_slot_on(collector.url) is False
    # a clone from a forged `clonefrom` member: pg_basebackup with the agent's passfile
    pg.cfg = {**pg.cfg, "create_replica_methods": ["basebackup"]}
    assert pg.create_replica(collector.url, create_slot=True) is False
    # a tool run with the agent's PGPASSFILE connecting there as the superuser
    psql = subprocess.run([str(PG_BIN / "psql"), "-w", "-h", "127.0.0.2", "-p", str(collector.port),
                           "-U", "postgres", "-d", "postgres", "-c", "select 1"],
                          env={"PGPASSFILE": str(pg.pgpass), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert psql.returncode != 0
    assert "postgres" in collector.users, "psql reached the collector"
    assert collector.users, "the agent's connections reached the collector"
    leaked = [(user, pw) for user, pw in collector.got if pw == SUPERUSER_PW]
    assert leaked == [], f"the superuser's password went to a forged member: {collector.got}"
    assert {user for user, _ in collector.got} <= {"replicator"}, collector.got
    # nothing of the clone is left in the file once it is over
    assert not any("127.0.0.2" in line for line in lines(pg.pgpass))


def test_the_own_server_still_gets_every_password(tmp_path: Path) -> None:
    pg = instance(tmp_path)
    text = "\n".join(lines(pg.pgpass))
    for host in ("localhost", "127.0.0.1", str(tmp_path)):
        assert f"{host}:5432:*:postgres:{SUPERUSER_PW}" in text
        assert f"{host}:5432:*:replicator:{REPLICATION_PW}" in text
    assert conf.pgpass_lines([("h:1", 5, conf.Credentials("u:x", "p\\w:"))]) == ["h\\:1:5:*:u\\:x:p\\\\w\\:"]
