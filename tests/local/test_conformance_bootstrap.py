"""Conformance with Patroni 4.1.5: a bootstrap that fails (issue 9, item 3).

Patroni frees the initialize key, moves the new data directory aside to
<data_dir>.failed and exits with status 1 ("Failed to bootstrap cluster");
it never tries again by itself, the supervisor's restart policy decides.
Howdah does the same and says why in one CRITICAL line. Each scenario runs
on both agents from the same YAML.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg2
import pytest

from harness import LocalCluster, wait_until
from harness.config import PG_BIN, REPLICATION, SUPERUSER

pytestmark = [pytest.mark.local, pytest.mark.patroni, pytest.mark.own_dcs,
              pytest.mark.timeout(600)]
KINDS = ["patroni", "howdah"]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
SCENARIOS: dict[str, tuple[dict[str, Any], str]] = {
    # name: (config extra, what Howdah's CRITICAL line names)
    "custom method exits 1": (
        {"bootstrap": {"method": "broken", "broken": {"command": "/bin/false"}}},
        "bootstrap.broken.command exited with status 1"),
    "initdb refuses its options": (
        {"bootstrap": {"initdb": [{"encoding": "NO_SUCH_ENCODING"}]}}, "initdb failed"),
    "postgres does not start after initdb": (
        {"bootstrap": {"dcs": {"postgresql": {"parameters": {
            "shared_preload_libraries": "no_such_library_here"}}}}},
        "postgres did not start after initdb"),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_bootstrap_gives_up_and_exits_non_zero(
        kind: str, scenario: str, patroni_venv: Any,
        local_cluster: Callable[..., LocalCluster]) -> None:
    extra, cause = SCENARIOS[scenario]
    cluster = local_cluster(1, kind=kind, extra=extra, dcs="etcd3", **FAST)
    node = cluster.nodes[0]
    assert node.proc is not None
    wait_until(lambda: node.proc is not None and node.proc.poll() is not None, 120,
               what=f"{kind} exits after the failed bootstrap", details=cluster.dump_logs)
    assert node.proc.poll() == 1
    assert cluster.dcs_key("initialize") is None
    assert cluster.dcs_key("leader") is None
    assert not (node.data_dir / "PG_VERSION").exists()
    failed = node.data_dir.with_name(node.data_dir.name + ".failed")
    assert failed.is_dir(), "the failed data directory is kept aside"
    log = node.log_text(400)
    if kind == "howdah":
        critical = [line for line in log.splitlines() if "CRITICAL" in line]
        assert len(critical) == 1 and cause in critical[0], critical
        assert log.count("won the initialize race") == 1, "bootstrap was tried again"
    else:
        assert "Failed to bootstrap cluster" in log


# ---- custom bootstrap methods (issue 9, item 8) -----------------------------------------
# One running source cluster (its own superuser password, WAL archived to a directory, a base
# backup taken before rows 1 and 2, a restore point "mark" between them); each scenario
# bootstraps a new cluster from it with a custom bootstrap.method, on both agents from the
# same YAML, and asserts the same outcome: what the method was called with, the rows the new
# primary has, that no recovery setting or signal file is left behind, which superuser
# passwords log in.
SOURCE_PW = "source-super-pw"
RESTORE = "cp {archive}/%f %p"
# the method's script: records its arguments, then copies (a running cluster with
# pg_basebackup -R, or the staged backup), optionally writing its own recovery settings
SCRIPT = """#!/bin/sh
set -e
printf '%s\\n' "$@" > {args}
dir=""
for a in "$@"; do
  case "$a" in --datadir=*) dir="${{a#--datadir=}}";; --pgdata=*) dir="${{a#--pgdata=}}";; esac
done
mkdir -p "$dir"; chmod 700 "$dir"
if [ "{mode}" = basebackup ]; then
  PGPASSWORD={password} {bin}/pg_basebackup -D "$dir" -X stream -c fast -R \\
    -d "host=127.0.0.1 port={port} user={user}"
else
  cp -R {staging}/. "$dir"/
  if [ "{mode}" = tool-recovery ]; then
    printf '%s\\n' "restore_command = '{restore}'" "recovery_target_name = 'mark'" \\
      "recovery_target_action = 'promote'" >> "$dir/postgresql.auto.conf"
    touch "$dir/recovery.signal"
  fi
fi
"""


class Source:
    def __init__(self, cluster: LocalCluster, archive: Path, staging: Path) -> None:
        self.cluster, self.archive, self.staging = cluster, archive, staging
        self.port = cluster.nodes[0].pg_port
        self.sysid = ""

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        return sql_as(self.port, SOURCE_PW, query)


def sql_as(port: int, password: str, query: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres", user="postgres",
                            password=password, connect_timeout=3)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def logs_in(port: int, password: str) -> bool:
    try:
        sql_as(port, password, "SELECT 1")
        return True
    except psycopg2.OperationalError:
        return False


MARK_HBA = "host all all 192.0.2.1/32 reject"  # only in the new cluster's bootstrap.pg_hba


def hba_rules(path: Path) -> list[str]:
    """The rules of a pg_hba.conf: its lines less comments and blank ones, spaces folded."""
    return [" ".join(line.split()) for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def as_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


@pytest.fixture(scope="module")
def source() -> Iterator[Source]:
    cluster = LocalCluster(1, kind="howdah", scope="src", dcs="etcd3", start_agents=False,
                           extra={"postgresql": {"authentication": {"superuser": {
                               "password": SOURCE_PW}}}}, **FAST)
    try:
        cluster.start()
        assert cluster.base is not None
        archive, staging = cluster.base / "archive", cluster.base / "staging"
        for d in (archive, staging):
            d.mkdir(mode=0o700)
            as_postgres(d)
        node = cluster.nodes[0]
        node.config["postgresql"]["parameters"].update(
            archive_mode="on", archive_command=f"test ! -f {archive}/%f && cp %p {archive}/%f")
        cluster.start_agents()
        cluster.wait_leader(180)
        src = Source(cluster, archive, staging)
        wait_until(lambda: logs_in(src.port, SOURCE_PW), 60, what="the source accepts its password")
        src.sql("CREATE TABLE events (id int)")
        src.sql("INSERT INTO events VALUES (0)")
        subprocess.run([str(PG_BIN / "pg_basebackup"), "-D", str(staging), "-X", "stream", "-c",
                        "fast", "-d", f"host=127.0.0.1 port={src.port} user={REPLICATION[0]}"],
                       check=True, env={"PGPASSWORD": REPLICATION[1], "PATH": "/usr/bin:/bin"},
                       user="postgres" if os.geteuid() == 0 else None)
        src.sql("INSERT INTO events VALUES (1)")
        src.sql("SELECT pg_create_restore_point('mark')")
        src.sql("INSERT INTO events VALUES (2)")
        segment = src.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        wait_until(lambda: (src.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "")
                   >= segment, 120, what=f"{segment} archived")
        src.sysid = str(src.sql("SELECT system_identifier FROM pg_control_system()")[0][0])
        yield src
    finally:
        cluster.close()


# name: (mode of the script, the method's section less its command, rows the new primary has)
METHODS: dict[str, tuple[str, dict[str, Any], list[int]]] = {
    # Patroni's "clone existing cluster": pg_basebackup -R of the running source; its
    # standby.signal and primary_conninfo must not make the new cluster a standby of it
    "clone a running cluster": ("basebackup", {"source-port": "{port}"}, [0, 1, 2]),
    "no_params": ("basebackup", {"no_params": True, "pgdata": "{data}", "source-port": "{port}"},
                  [0, 1, 2]),
    "recovery_conf (PITR to a restore point)": ("staged", {"recovery_conf": {
        "restore_command": RESTORE, "recovery_target_name": "mark",
        "recovery_target_action": "promote"}}, [0, 1]),
    "keep_existing_recovery_conf (the tool's own settings)": (
        "tool-recovery", {"keep_existing_recovery_conf": True}, [0, 1]),
    "the tool's recovery settings without keep_existing_recovery_conf": (
        "tool-recovery", {}, [0]),
}


@pytest.mark.parametrize("scenario", list(METHODS))
@pytest.mark.parametrize("kind", KINDS)
def test_custom_bootstrap_method(kind: str, scenario: str, source: Source, patroni_venv: Any,
                                 local_cluster: Callable[..., LocalCluster]) -> None:
    mode, section, rows = METHODS[scenario]
    cluster = local_cluster(1, kind=kind, scope="clone", dcs="etcd3", start_agents=False, **FAST)
    node = cluster.nodes[0]
    node.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    args_file, script = node.workdir / "method.args", node.workdir / "method.sh"
    fill = {"port": str(source.port), "data": str(node.data_dir), "archive": str(source.archive)}
    script.write_text(SCRIPT.format(args=args_file, mode=mode, user=REPLICATION[0],
                                    password=REPLICATION[1], bin=PG_BIN,
                                    port=source.port, staging=source.staging,
                                    restore=RESTORE.format(**fill)))
    spec: dict[str, Any] = {"command": f"/bin/sh {script}"}
    for key, value in section.items():
        if key == "recovery_conf":
            value = {k: v.format(**fill) for k, v in value.items()}
        elif isinstance(value, str):
            value = value.format(**fill)
        spec[key] = value
    node.config["bootstrap"].update(method="copy", copy=spec)
    node.config["bootstrap"]["pg_hba"] = [*node.config["bootstrap"]["pg_hba"], MARK_HBA]
    restored = hba_rules(source.staging / "pg_hba.conf")  # what the method copies
    cluster.start_agents()

    def found() -> Any:
        if node.proc is not None and node.proc.poll() is not None:
            pytest.fail(f"{kind} exited with {node.proc.poll()}:\n{node.log_text(60)}")
        return cluster.leader()
    leader = wait_until(found, 300, what=f"{kind}: a leader", details=cluster.dump_logs)
    # initialize is written once the bootstrap is over (roles, post_bootstrap, final config)
    wait_until(lambda: cluster.dcs_key("initialize") == source.sysid, 300,
               what=f"{kind}: initialize written", details=cluster.dump_logs)
    wait_until(lambda: leader.api("/patroni")[1].get("state") == "running", 120,
               what=f"{kind}: the new primary running", details=cluster.dump_logs)
    code, body = leader.api("/patroni")
    assert body.get("role") == "primary", body
    assert leader.is_writable()
    # what the method was called with: --scope/--datadir unless no_params, its own keys always
    args = args_file.read_text().split()
    want = [] if section.get("no_params") else ["--scope=clone", f"--datadir={node.data_dir}"]
    want += [f"--{k}={v.format(**fill) if isinstance(v, str) else v}" for k, v in section.items()
             if k not in ("no_params", "recovery_conf", "keep_existing_recovery_conf")]
    assert args == want, args
    assert [r[0] for r in leader.sql("SELECT id FROM events ORDER BY id")] == rows
    assert leader.sql("SELECT pg_is_in_recovery()") == [(False,)]
    assert cluster.dcs_key("initialize") == source.sysid
    # nothing of the recovery stays behind: no signal file, no recovery setting in force
    # or in postgresql.auto.conf (a replica cloned from here would copy it)
    for name in ("standby.signal", "recovery.signal"):
        assert not (node.data_dir / name).exists(), name
    auto = (node.data_dir / "postgresql.auto.conf").read_text()
    for name in ("primary_conninfo", "restore_command", "recovery_target_name"):
        assert name not in auto, auto
    settings = dict(leader.sql("SELECT name, setting FROM pg_settings WHERE name IN "
                               "('recovery_target_name', 'primary_conninfo', 'hot_standby')"))
    recovered = "recovery_conf" in section or bool(section.get("keep_existing_recovery_conf"))
    if kind == "howdah" or not recovered:
        # Different on purpose: Howdah restarts postgres after such a bootstrap, so the
        # configured parameters are in force once initialize is written
        assert settings == {"recovery_target_name": "", "primary_conninfo": "", "hot_standby": "on"}
    else:
        # Patroni 4.1.5 only reloads: the hot_standby=off it recovered with stays until a
        # restart (pending_restart), and so does the recovery target it was started with
        assert settings == {"recovery_target_name": "mark", "primary_conninfo": "", "hot_standby": "off"}
    # the passwords: the configured superuser password is set on what was restored
    assert logs_in(leader.pg_port, SUPERUSER[1])
    assert not logs_in(leader.pg_port, SOURCE_PW)
    # pg_hba.conf: bootstrap.pg_hba appended to the file the method restored (no
    # postgresql.pg_hba manages it), and left so by later starts
    want_hba = restored + node.config["bootstrap"]["pg_hba"]
    assert hba_rules(node.data_dir / "pg_hba.conf") == want_hba
    if scenario == "clone a running cluster":
        assert node.stop_sigterm(120) == 0
        node.start()
        wait_until(lambda: cluster.leader() is node, 180, what=f"{kind} leads again",
                   details=cluster.dump_logs)
        assert hba_rules(node.data_dir / "pg_hba.conf") == want_hba
