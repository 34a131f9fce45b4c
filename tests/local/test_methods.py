"""Custom bootstrap and replica creation methods on real clusters (seeds chapter 9)."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

from harness import LocalCluster, wait_until
from harness.config import PG_BIN, REPLICATION

pytestmark = pytest.mark.local


def shared_dir(prefix: str) -> Path:
    """A directory the agents (running as postgres) can read and write."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o777)
    return d


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\nset -e\n" + body)
    path.chmod(0o755)
    return str(path)


def test_first_replica_method_fails_second_succeeds(
        local_cluster: Callable[..., LocalCluster]) -> None:
    d = shared_dir("howdah-methods-")
    seen = d / "args"
    failing = script(d / "fail.sh", f'echo "$@" > {seen}\nexit 3\n')
    c = local_cluster(2, ttl=8, loop_wait=1, retry_timeout=3, extra={"postgresql": {
        "create_replica_methods": ["broken", "basebackup"],
        "broken": {"command": failing, "flavour": "x"}}})
    c.wait_leader(180)
    c.wait_streaming(1, 300)
    text = seen.read_text()
    args = text.split()
    assert "--role=replica" in args and "--scope=harness" in args and "--flavour=x" in args
    assert any(a.startswith("--datadir=") for a in args)
    assert "--connstring=dbname=postgres user=replicator host=127.0.0.1" in text
    assert "replica method broken failed (exit 3)" in c.dump_logs(500)


def test_custom_bootstrap_restores_another_clusters_backup(
        local_cluster: Callable[..., LocalCluster]) -> None:
    d = shared_dir("howdah-restore-")
    backup = d / "backup"
    source = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, scope="source")
    src = source.wait_leader(180)
    src.sql("CREATE TABLE restored (v text)")
    src.sql("INSERT INTO restored VALUES ('from the source cluster')")
    sysid = src.sql("SELECT system_identifier::text FROM pg_control_system()")[0][0]
    env = {**os.environ, "PGPASSWORD": "harness-repl-pw"}
    subprocess.run([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(src.pg_port),
                    "-U", REPLICATION[0], "-D", str(backup), "-X", "stream", "-c", "fast"],
                   check=True, env=env, timeout=300)
    subprocess.run(["chown", "-R", "postgres:postgres", str(d)], check=True)
    restore = script(d / "restore.sh", f"""
for a in "$@"; do case "$a" in --datadir=*) DATADIR="${{a#--datadir=}}";; esac; done
cp -a {backup}/. "$DATADIR"/
""")
    target = local_cluster(2, ttl=8, loop_wait=1, retry_timeout=3, scope="target", extra={
        "bootstrap": {"method": "restore", "restore": {"command": restore}}})
    leader = target.wait_leader(240)
    assert leader.sql("SELECT v FROM restored") == [("from the source cluster",)]
    assert target.dcs_key("initialize") == sysid, "initialize holds the restored system id"
    target.wait_streaming(1, 300)
    leader.sql("INSERT INTO restored VALUES ('written after the restore')")


def test_failing_custom_bootstrap_frees_initialize_without_initdb(
        local_cluster: Callable[..., LocalCluster]) -> None:
    d = shared_dir("howdah-badboot-")
    bad = script(d / "bad.sh", "exit 1\n")
    c = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3, extra={
        "bootstrap": {"method": "nope", "nope": {"command": bad}}})
    deadline = time.monotonic() + 120
    while "bootstrap.nope.command exited with status 1" not in c.dump_logs(300):
        assert time.monotonic() < deadline, "the bootstrap script never ran"
        time.sleep(0.5)
    time.sleep(2)
    assert c.leader() is None
    assert c.dcs_key("initialize") in (None, ""), "no silent fallback to initdb"
    assert not (c.nodes[0].data_dir / "PG_VERSION").exists()
    wait_until(lambda: not c.nodes[0].is_running(), 60, what="the agent gives up and exits")


def test_no_master_method_restores_with_no_primary(
        local_cluster: Callable[..., LocalCluster]) -> None:
    """The whole cluster is gone but `initialize` remains: a method marked
    no_master rebuilds a member from a backup, and it becomes the leader."""
    d = shared_dir("howdah-nomaster-")
    backup = d / "backup"
    c = local_cluster(1, ttl=8, loop_wait=1, retry_timeout=3)
    node = c.wait_leader(180)
    node.sql("CREATE TABLE kept (v text)")
    node.sql("INSERT INTO kept VALUES ('in the backup')")
    env = {**os.environ, "PGPASSWORD": "harness-repl-pw"}
    subprocess.run([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(node.pg_port),
                    "-U", REPLICATION[0], "-D", str(backup), "-X", "stream", "-c", "fast"],
                   check=True, env=env, timeout=300)
    subprocess.run(["chown", "-R", "postgres:postgres", str(d)], check=True)
    sysid = c.dcs_key("initialize")
    assert node.stop_sigterm(120) == 0
    subprocess.run(["rm", "-rf", str(node.data_dir)], check=True)
    seen = d / "args"
    restore = script(d / "restore.sh", f"""
echo "$@" > {seen}
for a in "$@"; do case "$a" in --datadir=*) DATADIR="${{a#--datadir=}}";; esac; done
mkdir -p "$DATADIR" && cp -a {backup}/. "$DATADIR"/ && chmod 700 "$DATADIR"
""")
    node.config["postgresql"]["create_replica_methods"] = ["restore"]
    node.config["postgresql"]["restore"] = {"command": restore, "no_master": True}
    node.start()
    leader = c.wait_leader(240)
    assert leader.name == node.name
    assert leader.sql("SELECT v FROM kept") == [("in the backup",)]
    assert c.dcs_key("initialize") == sysid
    assert "--connstring=" in seen.read_text().split(), "no leader: an empty connstring"
