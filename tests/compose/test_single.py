"""One container, no DCS variables: the demo, pgbouncer, a random UID, and a bad variable."""
from __future__ import annotations

from typing import Any, Iterator

import docker
import pytest

from .helpers import IMAGE, api, connect, free_port, sql, wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(300)]


@pytest.fixture
def run(client: docker.DockerClient, image: str) -> Iterator[Any]:
    started: list[Any] = []

    def start(env: dict[str, str], **kwargs: Any) -> tuple[Any, dict[int, int]]:
        ports = {5432: free_port(), 6432: free_port()}
        container = client.containers.run(image, detach=True, environment=env, labels={"howdah-test": "single"},
                                          ports={f"{p}/tcp": ("127.0.0.1", h) for p, h in ports.items()}, **kwargs)
        started.append(container)
        return container, ports

    yield start
    for container in started:
        container.remove(force=True, v=True)


def test_one_container_demo_is_writable_and_pgbouncer_answers(run: Any) -> None:
    container, ports = run({"PGBOUNCER": "true", "PGPASSWORD_SUPERUSER": "postgres"})

    def written() -> bool:
        sql(ports[5432], "create table if not exists demo(x int); insert into demo values (1)")
        return True

    wait_for("a writable single-node primary", written, timeout=60)
    wait_for("/primary answering 200", lambda: api(container, "/primary")[0] == 200, timeout=15)
    rows = wait_for("pgbouncer on 6432", lambda: sql(ports[6432], "select count(*) from demo"), timeout=20)
    assert rows[0][0] >= 1
    conn = connect(ports[6432])
    assert conn.info.port == ports[6432]
    conn.close()


def test_random_uid_without_passwd_entry(run: Any) -> None:
    container, ports = run({"PGPASSWORD_SUPERUSER": "postgres"}, user="123456:0")
    wait_for("a writable primary as uid 123456", lambda: sql(ports[5432], "select 1") == [(1,)], timeout=60)
    assert container.exec_run(["id", "-u"]).output.decode().strip() == "123456"


@pytest.mark.parametrize("env, variable", [
    ({"PGPORT": "five"}, "PGPORT"),
    ({"SCOPE": "c", "ETCD_URL": "http://:2379"}, "ETCD_URL"),
    ({"SPILO_CONFIGURATION": "postgresql: {parameters: [x"}, "SPILO_CONFIGURATION"),
    ({"SCOPE": "c", "ZOOKEEPER_HOSTS": "zk1:2181,zk2:2181"}, "ZOOKEEPER_HOSTS"),
])
def test_bad_variable_stops_the_container_with_one_line(client: docker.DockerClient, image: str,
                                                        env: dict[str, str], variable: str) -> None:
    container = client.containers.run(image, detach=True, environment=env, labels={"howdah-test": "single"})
    try:
        status = container.wait(timeout=30)
        logs = container.logs().decode().strip().splitlines()
        assert status["StatusCode"] == 2
        assert len(logs) == 1 and logs[0].startswith(f"howdah-entrypoint: invalid {variable}: "), logs
    finally:
        container.remove(force=True, v=True)
