"""Local test tier: real etcd, PostgreSQL 15 and agents on 127.0.0.1.

Puts tests/ on sys.path so tests can `import harness`, registers the
`patroni` marker, and offers fixtures that build clusters and print every
log tail when a test fails. HARNESS_KEEP=1 keeps the cluster directories.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Generator, Iterator

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import AgentNode, EtcdServer, LocalCluster, wait_until  # noqa: E402
from harness.config import PATRONI_VENV, REPO  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "patroni: runs the real Patroni 4.1.5 "
                            "(bench/.venv-patroni, created by bench/setup.sh)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: Any) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # read by fixtures at teardown
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(request.node, f"rep_{w}", None) is not None
               and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call"))


@pytest.fixture
def etcd_server() -> Iterator[EtcdServer]:
    with EtcdServer() as server:
        yield server


@pytest.fixture
def local_cluster(request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalCluster]]:
    """Factory: local_cluster(n, kind=..., ttl=..., ...) -> a started LocalCluster,
    closed (every process killed) at teardown; logs printed if the test failed."""
    made: list[LocalCluster] = []

    def make(*args: Any, **kwargs: Any) -> LocalCluster:
        cluster = LocalCluster(*args, **kwargs)
        made.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in made:
        if _failed(request):
            sys.stderr.write(f"\n===== cluster logs ({cluster.base}) =====\n"
                             + cluster.dump_logs(120) + "\n")
        cluster.close()


@pytest.fixture
def streaming_pair(request: pytest.FixtureRequest, local_cluster: Callable[..., LocalCluster]
                   ) -> Callable[..., tuple[LocalCluster, AgentNode, AgentNode]]:
    """Factory: streaming_pair(kind, **cluster_kwargs) -> (cluster, leader, replica), a 2-node
    cluster of `kind` (Patroni's venv made first) whose replica answers /replica 200."""
    def make(kind: str, **kwargs: Any) -> tuple[LocalCluster, AgentNode, AgentNode]:
        if kind == "patroni":
            request.getfixturevalue("patroni_venv")
        cluster = local_cluster(2, kind=kind, **kwargs)
        leader = cluster.wait_leader(180)
        cluster.wait_streaming(1, 300)
        replica = next(n for n in cluster.nodes if n is not leader)
        wait_until(lambda: replica.api("/replica")[0] == 200, 120, what="replica answers /replica 200")
        return cluster, leader, replica
    return make


@pytest.fixture(scope="session")
def patroni_venv() -> Path:
    """bench/.venv-patroni, created through bench/setup.sh when missing;
    skips the test when it cannot be created (no route to PyPI)."""
    if not (PATRONI_VENV / "bin" / "patroni").exists():
        res = subprocess.run([str(REPO / "bench" / "setup.sh")], capture_output=True,
                             text=True, timeout=900)
        if res.returncode != 0:
            pytest.skip("bench/setup.sh could not create the Patroni venv:\n"
                        + res.stdout[-2000:] + res.stderr[-2000:])
    return PATRONI_VENV


@pytest.fixture
def s3() -> Iterator[Any]:
    """An S3-compatible server over TLS (moto behind HAProxy, tests/harness/s3.py) with the
    harness's bucket; a test module that needs other buckets defines its own `s3`."""
    pytest.importorskip("moto")
    pytest.importorskip("cryptography")
    from harness.s3 import BUCKET, S3Server
    with S3Server() as server:
        server.create_bucket(BUCKET)
        yield server
