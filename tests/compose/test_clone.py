"""Clones of the compose cluster, which archives to a shared pgBackRest repository
(docker-compose.pgbackrest.yml): CLONE_WITH_BASEBACKUP from the running primary, and a
point-in-time clone from the repository (CLONE_WITH_WALE, pgBackRest underneath) that stops
at CLONE_TARGET_TIME."""
from __future__ import annotations

import json
import subprocess
import time
from typing import Any, Iterator

import docker
import pytest
from docker.models.containers import Container

from .helpers import ROOT, Project, psql_value, remove, run_node, sql, wait_for

pytestmark = pytest.mark.compose
NODE_ENV = {"ETCD3_HOST": "etcd:2379", "ETCD3_USERNAME": "howdah", "ETCD3_PASSWORD": "howdah-etcd-demo",
            "PGPASSWORD_SUPERUSER": "postgres", "PGPASSWORD_STANDBY": "standby",
            "PGPASSWORD_ADMIN": "admin",
            "PATRONI_RESTAPI_USERNAME": "howdah", "PATRONI_RESTAPI_PASSWORD": "howdah-demo"}


class BackupProject(Project):
    """The compose project with the pgBackRest overlay."""

    def compose(self, *args: str) -> None:
        env = {"HOWDAH_PRIMARY_PORT": str(self.primary_port), "HOWDAH_REPLICA_PORT": str(self.replica_port),
               "HOWDAH_STATS_PORT": str(self.stats_port)}
        subprocess.run([str(ROOT / "tools/compose.sh"), "-p", self.name, "-f", str(ROOT / "docker-compose.yml"),
                        "-f", str(ROOT / "docker-compose.pgbackrest.yml"), *args], check=True,
                       env={**__import__("os").environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def backup_project(client: docker.DockerClient, image: str) -> Iterator[BackupProject]:
    proj = BackupProject(client, name=f"howdahclone{__import__('os').getpid()}")
    with proj.up(healthy_timeout=180):
        yield proj


def backups(container: Container, stanza: str) -> list[dict[str, Any]]:
    result = container.exec_run(["pgbackrest", "--config=/run/howdah/pgbackrest.conf", f"--stanza={stanza}",
                                 "info", "--output=json"])
    if result.exit_code != 0:
        return []
    return [b for s in json.loads(result.output.decode()) if s["name"] == stanza for b in s.get("backup") or []]


def switch_and_archive(port: int) -> None:
    segment = sql(port, "SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    wait_for(f"{segment} archived", lambda: (sql(port, "SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
                                             or "") >= segment, 60)


def post(container: Container, path: str, body: dict[str, Any]) -> int:
    code = ("import base64,json,sys,urllib.request as u,urllib.error as e\n"
            "r=u.Request('http://127.0.0.1:8008%s',data=sys.argv[1].encode(),method='POST',"
            "headers={'Authorization':'Basic '+base64.b64encode(b'howdah:howdah-demo').decode()})\n"
            "try: print(u.urlopen(r,timeout=10).status)\n"
            "except e.HTTPError as x: print(x.code)" % path)
    result = container.exec_run(["python3", "-c", code, json.dumps(body)])
    return int(result.output.decode().strip() or 0) if result.exit_code == 0 else 0


def test_keeper_backs_up_the_primary_and_a_reinitialized_replica_restores_from_it(
        backup_project: BackupProject) -> None:
    name = wait_for("a leader", backup_project.healthy, timeout=60)
    leader = backup_project.container(name)
    full = wait_for("the first full backup", lambda: backups(leader, "demo"), timeout=180, interval=2)
    assert [b["type"] for b in full] == ["full"]
    logs = "".join(backup_project.container(n).logs().decode(errors="replace") for n in ("howdah1", "howdah2", "howdah3"))
    assert "backup-keeper: full backup of demo done" in logs
    replica = backup_project.container(next(n for n in ("howdah1", "howdah2", "howdah3") if n != name))
    assert post(replica, "/reinitialize", {"force": True}) == 200
    wait_for("the replica rebuilt from the repository", lambda: "replica created with method pgbackrest"
             in replica.logs().decode(errors="replace"), timeout=180, interval=1)
    wait_for("the cluster healthy again", backup_project.healthy, timeout=120)


def test_clone_with_basebackup(client: docker.DockerClient, backup_project: BackupProject) -> None:
    leader = wait_for("a leader", backup_project.healthy, timeout=60)
    port = backup_project.primary_port
    sql(port, "CREATE TABLE IF NOT EXISTS cloned (v text)")
    sql(port, "INSERT INTO cloned VALUES ('copied')")
    clone = run_node(client, backup_project, "clone1", {**NODE_ENV,
        "SCOPE": "clone1", "CLONE_METHOD": "CLONE_WITH_BASEBACKUP", "CLONE_HOST": leader,
        "CLONE_USER": "standby", "CLONE_PASSWORD": "standby"})
    try:
        wait_for("the clone running as a primary", lambda: psql_value(clone, "SELECT pg_is_in_recovery()") == "f",
                 timeout=180, interval=1)
        assert psql_value(clone, "SELECT v FROM cloned") == "copied"
        assert psql_value(clone, "INSERT INTO cloned VALUES ('clone only')") is not None
        assert psql_value(clone, "SELECT count(*) FROM cloned") == "2"
        assert sql(port, "SELECT count(*) FROM cloned") == [(1,)], "the source is untouched"
        text = clone.logs().decode(errors="replace")
        assert "clone-basebackup: cloning" in text and "clone-basebackup: clone finished" in text
    finally:
        remove(clone)


def test_point_in_time_clone_stops_at_the_target(client: docker.DockerClient, backup_project: BackupProject) -> None:
    leader = backup_project.container(wait_for("a leader", backup_project.healthy, timeout=60))
    wait_for("the first full backup", lambda: backups(leader, "demo"), timeout=180, interval=2)
    port = backup_project.primary_port
    sql(port, "CREATE TABLE IF NOT EXISTS events (v text)")
    sql(port, "INSERT INTO events VALUES ('before the target')")
    switch_and_archive(port)
    time.sleep(1.5)
    target = sql(port, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00'")[0][0]
    time.sleep(1.5)
    sql(port, "INSERT INTO events VALUES ('after the target')")
    switch_and_archive(port)
    volume = f"{backup_project.name}_pgbackrest"
    clone = run_node(client, backup_project, "pitr1", {**NODE_ENV,
        "SCOPE": "pitr", "CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "demo", "CLONE_TARGET_TIME": target,
        "PGBACKREST": "true", "PGBACKREST_REPO_PATH": "/home/postgres/pgbackrest"},
        volumes={volume: {"bind": "/home/postgres/pgbackrest", "mode": "rw"}})
    try:
        wait_for("the PITR clone promoted", lambda: psql_value(clone, "SELECT pg_is_in_recovery()") == "f",
                 timeout=300, interval=1)
        assert psql_value(clone, "SELECT string_agg(v, ',') FROM events") == "before the target"
        text = clone.logs().decode(errors="replace")
        assert "clone-pgbackrest: restoring backup" in text
        # the clone archives to its own stanza and gets its own first backup
        assert wait_for("the clone's own full backup", lambda: backups(clone, "pitr"), timeout=180, interval=2)
    finally:
        remove(clone)


def test_clone_target_time_without_zone_stops_the_container(client: docker.DockerClient,
                                                             backup_project: BackupProject) -> None:
    bad = run_node(client, backup_project, "badclone", {**NODE_ENV,
        "SCOPE": "bad", "CLONE_METHOD": "CLONE_WITH_WALE", "CLONE_SCOPE": "demo",
        "CLONE_TARGET_TIME": "2026-01-01 00:00:00"})
    try:
        assert bad.wait(timeout=60)["StatusCode"] == 2
        lines = bad.logs().decode().strip().splitlines()
        assert lines == ["howdah-entrypoint: invalid CLONE_TARGET_TIME: '2026-01-01 00:00:00' has no time zone; "
                         "add the offset, e.g. 2024-05-01 12:00:00+00:00"]
    finally:
        remove(bad)
