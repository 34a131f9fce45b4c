"""PostgreSQL majors in the image: a volume holding another major's data is refused with one
line and left untouched, and the documented 15 -> 17 path (dump the old cluster with the
image's pg_dumpall, restore into a new 17 cluster) runs end to end.

The old cluster is the host's PostgreSQL 15 (Debian bookworm), started here for real."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator

import docker
import psycopg2
import pytest

from .helpers import free_port, sql, wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(400)]

PG15 = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), user="postgres", group="postgres", check=True, capture_output=True,
                          text=True, **kw)  # type: ignore[call-overload]


@pytest.fixture
def pg15() -> Iterator[tuple[Path, int]]:
    """A real PostgreSQL 15 data directory and a server on it (127.0.0.1, trust for the test)."""
    if not (PG15 / "initdb").exists():
        pytest.fail("the host's PostgreSQL 15 is missing (tools/setup-host.sh installs it)")
    top = Path(tempfile.mkdtemp(prefix="howdah-pg15-"))
    os.chmod(top, 0o755)
    shutil.chown(top, "postgres", "postgres")
    data, port = top / "data", free_port()
    as_postgres(str(PG15 / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    yield data, port
    subprocess.run([str(PG15 / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], user="postgres",
                   capture_output=True)
    shutil.rmtree(top, ignore_errors=True)


def tree_digest(client: docker.DockerClient, image: str, volume: str) -> str:
    out = client.containers.run(image, entrypoint=["sh", "-c", "cd /v && find . -type f | sort | xargs sha1sum"],
                                volumes={volume: {"bind": "/v", "mode": "ro"}}, remove=True, user="0")
    return hashlib.sha1(out).hexdigest()


def test_a_volume_with_postgresql_15_data_is_refused_untouched(client: docker.DockerClient, image: str,
                                                              pg15: tuple[Path, int]) -> None:
    data, _ = pg15
    volume = client.volumes.create(labels={"howdah-test": "pgversion"})
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(str(data), arcname="pgroot/data")
        loader = client.containers.create(image, entrypoint=["true"], volumes={volume.name: {"bind": "/home/postgres/pgdata"}})
        try:
            loader.put_archive("/home/postgres/pgdata", buf.getvalue())
        finally:
            loader.remove(force=True)
        before = tree_digest(client, image, volume.name)
        node = client.containers.run(image, detach=True, environment={"PGPASSWORD_SUPERUSER": "postgres"},
                                     volumes={volume.name: {"bind": "/home/postgres/pgdata"}},
                                     labels={"howdah-test": "pgversion"})
        try:
            status = node.wait(timeout=120)
            logs = node.logs().decode()
        finally:
            node.remove(force=True)
        assert status["StatusCode"] == 2, logs
        lines = [line for line in logs.splitlines() if "PGDATA" in line]
        assert len(lines) == 1 and "PostgreSQL 15 data" in lines[0] and "17" in lines[0], logs
        assert "Traceback" not in logs
        assert tree_digest(client, image, volume.name) == before, "the 15 data directory was changed"
    finally:
        volume.remove(force=True)


def test_postgresql_15_cluster_moves_to_17_by_dump_and_restore(client: docker.DockerClient, image: str,
                                                               pg15: tuple[Path, int]) -> None:
    data, port = pg15
    as_postgres(str(PG15 / "pg_ctl"), "-D", str(data), "-w", "-l", str(data.parent / "log"),
                "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {data.parent}", "start")
    old = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    old.autocommit = True
    with old.cursor() as cur:
        cur.execute("create database app")
    old.close()
    app = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="app")
    app.autocommit = True
    with app.cursor() as cur:
        cur.execute("create role appuser login; create table t(id int primary key, v text) ;"
                    "insert into t select g, md5(g::text) from generate_series(1, 1000) g; alter table t owner to appuser")
    app.close()

    new_port = free_port()
    node = client.containers.run(image, detach=True, environment={"PGPASSWORD_SUPERUSER": "postgres"},
                                 ports={"5432/tcp": ("127.0.0.1", new_port)}, labels={"howdah-test": "pgversion"})
    try:
        wait_for("a writable PostgreSQL 17 primary", lambda: sql(new_port, "select current_setting('server_version_num')::int >= 170000") == [(True,)], timeout=120)
        # The documented path (README: PostgreSQL versions): the image's pg_dumpall reads the old
        # cluster, psql restores into the new one.
        dump = client.containers.run(image, entrypoint=["pg_dumpall", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
                                     network_mode="host", remove=True, user="postgres")
        restore = subprocess.run(["psql", "-v", "ON_ERROR_STOP=0", "-q", "-h", "127.0.0.1", "-p", str(new_port),
                                  "-U", "postgres", "-d", "postgres"], input=dump, capture_output=True,
                                 env={**os.environ, "PGPASSWORD": "postgres"}, timeout=120)
        assert restore.returncode == 0, restore.stderr.decode()[-2000:]
        conn = psycopg2.connect(host="127.0.0.1", port=new_port, user="postgres", password="postgres", dbname="app")
        with conn.cursor() as cur:
            cur.execute("select count(*), pg_catalog.pg_get_userbyid(c.relowner) from t, pg_class c "
                        "where c.relname = 't' group by 2")
            assert cur.fetchall() == [(1000, "appuser")]
        conn.close()
    finally:
        node.remove(force=True, v=True)
