"""pgBackRest (Debian's, on the host) with real clusters: WAL archiving, the backup keeper's
stanza and first full backup, replicas restored from the repository (the plain ``pgbackrest``
method and the WAL-E style ``howdah-restore-replica``, which declines a backup too far behind
so basebackup takes over), and the clone scripts in bootstrap/ (a copy of a running cluster, a
point-in-time clone from the repository)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness import LocalCluster
from harness.config import HOWDAH_VENV, REPLICATION, REPO, _runnable_as_postgres
from harness.node import AgentNode
from harness.archive import history_with_a_target, switch_and_archive
from harness.waiting import wait_for

pytestmark = pytest.mark.local


def python() -> str:
    """A python3 the postgres user can run, with psycopg2."""
    if _runnable_as_postgres(str(HOWDAH_VENV / "bin" / "python")):
        return str(HOWDAH_VENV / "bin" / "python")
    site = sorted((HOWDAH_VENV / "lib").glob("python3*/site-packages"))
    return f"env PYTHONPATH={site[-1]} /usr/bin/python3"


class Repo:
    """A pgBackRest repository and config file in a directory the agents can write."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="howdah-pgbackrest-"))
        os.chmod(self.dir, 0o777)
        self.conf = self.dir / "pgbackrest.conf"
        self.stanzas: dict[str, str] = {}
        self.write()

    def write(self) -> None:
        text = (f"[global]\nrepo1-path={self.dir}/repo\nlock-path={self.dir}/lock\nlog-path={self.dir}/log\n"
                "log-level-file=off\nlog-level-console=info\nstart-fast=y\nrepo1-retention-full=9\n")
        text += "".join(f"\n[{name}]\n{body}" for name, body in self.stanzas.items())
        self.conf.write_text(text)
        os.chmod(self.conf, 0o644)

    def point_at(self, stanza: str, node: AgentNode) -> None:
        """The stanza's pg1 is `node` (where backups are taken)."""
        self.stanzas[stanza] = (f"pg1-path={node.data_dir}\npg1-port={node.pg_port}\n"
                                f"pg1-socket-path={node.workdir}\npg1-user=postgres\n")
        self.write()

    def cmd(self, stanza: str) -> str:
        return f"pgbackrest --config={self.conf} --stanza={stanza}"

    def archiving(self, stanza: str) -> dict[str, Any]:
        """extra= for a cluster that archives to, and restores WAL from, `stanza`."""
        here = '--pg1-path="$PWD"'  # archive and restore commands run in the data directory
        return {"bootstrap": {"dcs": {"postgresql": {"parameters": {
            "archive_mode": "on", "archive_command": f"{self.cmd(stanza)} {here} archive-push %p"}}}},
            "postgresql": {"recovery_conf": {"restore_command": f'{self.cmd(stanza)} {here} archive-get %f "%p"'}}}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(argv), user="postgres", group="postgres", capture_output=True, text=True,
                              timeout=600, cwd=self.dir)
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def backups(self, stanza: str) -> list[dict[str, Any]]:
        out = self.run(*self.cmd(stanza).split(), "info", "--output=json").stdout
        entry = next((e for e in json.loads(out) if e["name"] == stanza), {})
        return list(entry.get("backup") or [])

    def keeper(self, stanza: str, node: AgentNode) -> subprocess.CompletedProcess[str]:
        argv = python().split() + [str(REPO / "scripts/backup_keeper.py"), f"--config={self.conf}",
                                   f"--stanza={stanza}", f"--api-url={node.api_url}/patroni", "--once"]
        return self.run(*argv)


@pytest.fixture
def repo() -> Iterator[Repo]:
    made = Repo()
    yield made
    shutil.rmtree(made.dir, ignore_errors=True)


def agent_log(node: AgentNode) -> str:
    return node.log_path.read_text(errors="replace")


def started_with(c: LocalCluster, node: AgentNode, pg: dict[str, Any]) -> AgentNode:
    node.config["postgresql"].update(pg)
    c.start_agents([node])
    return node


def test_archive_backup_and_replicas_from_the_repository(repo: Repo,
                                                         local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(4, ttl=8, loop_wait=1, retry_timeout=3, start_agents=False, extra=repo.archiving("harness"))
    n1, n2, n3, n4 = c.nodes
    c.start_agents([n1])
    leader = c.wait_leader(180)
    assert leader is n1
    repo.point_at("harness", n1)
    n1.sql("CREATE TABLE kept (v text)")
    n1.sql("INSERT INTO kept VALUES ('in the backup')")
    wait_for("n1 running as primary", lambda: n1.api("/patroni")[1].get("state") == "running", 60)
    first = repo.keeper("harness", n1)
    assert "creating stanza harness" in first.stdout and "taking a full backup" in first.stdout
    assert [b["type"] for b in repo.backups("harness")] == ["full"]
    assert "taking a full backup" not in repo.keeper("harness", n1).stdout, "one backup is enough"
    assert len(repo.backups("harness")) == 1
    n1.sql("INSERT INTO kept VALUES ('only in the archive')")
    switch_and_archive(n1)

    # the image's default: a plain delta restore from the repository, then basebackup
    started_with(c, n2, {"create_replica_methods": ["pgbackrest", "basebackup"], "pgbackrest": {
        "command": f"{repo.cmd('harness')} --pg1-path={n2.data_dir} --delta --type=standby restore",
        "keep_data": True, "no_params": True}})
    wait_for("n2 streaming", lambda: "n2" in c.streaming(n1), 300)
    assert "replica created with method pgbackrest" in agent_log(n2)
    assert n2.sql("SELECT count(*) FROM kept") == [(2,)]

    # WAL-E style: restores a backup close enough to the leader ...
    restore = f"{python()} {REPO / 'scripts/restore_replica.py'} --config={repo.conf} --stanza=harness"
    started_with(c, n3, {"create_replica_methods": ["wal_e", "basebackup"], "wal_e": {
        "command": restore, "threshold_megabytes": 1024, "threshold_backup_size_percentage": 10000}})
    wait_for("n3 streaming", lambda: "n3" in c.streaming(n1), 300)
    assert "replica created with method wal_e" in agent_log(n3)

    # ... and declines one further behind than threshold_megabytes, so basebackup takes over
    n1.sql("INSERT INTO kept SELECT repeat('x', 1000) FROM generate_series(1, 3000)")
    switch_and_archive(n1)
    started_with(c, n4, {"create_replica_methods": ["wal_e", "basebackup"], "wal_e": {
        "command": restore, "threshold_megabytes": 1}})
    wait_for("n4 streaming", lambda: "n4" in c.streaming(n1), 300)
    text = agent_log(n4)
    assert "MB of WAL behind the leader (threshold_megabytes 1)" in text and "replica method wal_e failed" in text
    for node in (n2, n3, n4):
        wait_for(f"all rows on {node.name}", lambda n=node: n.sql("SELECT count(*) FROM kept") == [(3002,)], 60)


def test_clone_scripts(repo: Repo, local_cluster: Callable[..., LocalCluster]) -> None:  # repo removed last
    source = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, scope="source", extra=repo.archiving("source"))
    src = source.wait_leader(180)
    repo.point_at("source", src)
    target = history_with_a_target(src, lambda: repo.keeper("source", src).stdout)

    py = python()
    pitr = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, scope="pitr", extra={"bootstrap": {
        "method": "clone_with_pgbackrest", "clone_with_pgbackrest": {
            "command": f"{py} {REPO / 'bootstrap/clone_with_pgbackrest.py'} --config={repo.conf} --stanza=source "
                       f"--target-time='{target}'",
            "recovery_conf": {"restore_command": f'{repo.cmd("source")} --pg1-path="$PWD" archive-get %f "%p"',
                              "recovery_target_action": "promote", "recovery_target_timeline": "latest",
                              "recovery_target_time": target}}}})
    leader = pitr.wait_leader(300)
    assert leader.sql("SELECT id FROM events ORDER BY id") == [(1,), (2,)]
    assert "clone-pgbackrest: restoring backup" in agent_log(leader)
    assert leader.is_writable()

    env = f"env CLONE_PASSWORD={REPLICATION[1]}"
    copy = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, scope="copy", extra={"bootstrap": {
        "method": "clone_with_basebackup", "clone_with_basebackup": {
            "command": f"{env} {py} {REPO / 'bootstrap/clone_with_basebackup.py'} --host=127.0.0.1 "
                       f"--port={src.pg_port} --user={REPLICATION[0]}"}}})
    leader = copy.wait_leader(300)
    assert leader.sql("SELECT id FROM events ORDER BY id") == [(1,), (2,), (3,)]
    assert "clone-basebackup: clone finished" in agent_log(leader)
    leader.sql("INSERT INTO events (id) VALUES (4)")
    assert src.sql("SELECT count(*) FROM events") == [(3,)]
