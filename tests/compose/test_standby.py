"""A 2-node standby cluster (STANDBY_HOST/STANDBY_PORT) following the 3-node compose cluster
through HAProxy's primary port, so it keeps following across failovers of the source."""
from __future__ import annotations

from typing import Iterator

import docker
import pytest
from docker.models.containers import Container

from .helpers import Project, api, psql_value, remove, run_node, sql, wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(600)]
NODE_ENV = {"ETCD3_HOST": "etcd:2379", "ETCD3_USERNAME": "howdah", "ETCD3_PASSWORD": "howdah-etcd-demo",
            "PGPASSWORD_SUPERUSER": "postgres", "PGPASSWORD_STANDBY": "standby",
            "PGPASSWORD_ADMIN": "admin",
            "PATRONI_RESTAPI_USERNAME": "howdah", "PATRONI_RESTAPI_PASSWORD": "howdah-demo", "SCOPE": "standby", "STANDBY_HOST": "haproxy", "STANDBY_PORT": "5000"}


@pytest.fixture
def standby_nodes(client: docker.DockerClient, project: Project) -> Iterator[list[Container]]:
    nodes: list[Container] = []
    try:
        for name in ("standby1", "standby2"):
            nodes.append(run_node(client, project, name, NODE_ENV))
        yield nodes
    finally:
        for node in nodes:
            remove(node)


def test_standby_cluster_follows_the_compose_cluster(project: Project, standby_nodes: list[Container]) -> None:
    port = project.primary_port
    sql(port, "CREATE TABLE IF NOT EXISTS shipped (v text)")
    sql(port, "INSERT INTO shipped VALUES ('before the standby cluster')")
    leader = wait_for("a standby leader", lambda: next(
        (n for n in standby_nodes if api(n, "/standby-leader")[0] == 200), None), timeout=240, interval=1)
    other = next(n for n in standby_nodes if n is not leader)
    assert api(leader, "/patroni")[1].get("role") == "standby_leader"
    assert api(leader, "/primary")[0] == 503, "a standby cluster has no primary"
    wait_for("the cascading replica", lambda: api(other, "/patroni")[1].get("role") == "replica", timeout=240)
    sql(port, "INSERT INTO shipped VALUES ('after')")
    for node in standby_nodes:
        wait_for(f"both rows on {node.name}", lambda n=node: psql_value(n, "SELECT count(*) FROM shipped") == "2",
                 timeout=60)
        assert psql_value(node, "SELECT pg_is_in_recovery()") == "t"
    leader.reload()
    address = leader.attrs["NetworkSettings"]["Networks"][f"{project.name}_default"]["IPAddress"]
    wait_for("the replica cascading from the standby leader",
             lambda: psql_value(other, "SELECT sender_host FROM pg_stat_wal_receiver") == address, timeout=60)
