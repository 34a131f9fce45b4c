"""Helpers for the compose tier: the image build, a compose project, probes through docker exec."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import docker
import psycopg2
from docker.models.containers import Container

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("HOWDAH_IMAGE", "howdah:local")
PASSWORD = "postgres"
NODES = ("howdah1", "howdah2", "howdah3")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Call probe until it returns something truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - a probe may fail while things start
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})")


def build_image() -> None:
    """Base image (debootstrapped when it cannot be pulled), then the real Dockerfile.
    Docker's layer cache makes a second run take a second; a failure shows the build's tail."""
    for command in ([str(ROOT / "tools/ensure-base-image.sh")],
                    ["docker", "build", "--network", "host", "-t", IMAGE, str(ROOT)]):
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{done.stdout[-4000:]}")


def connect(port: int, timeout: int = 3, **kwargs: Any) -> Any:
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=PASSWORD,
                            dbname="postgres", connect_timeout=timeout, **kwargs)
    conn.autocommit = True
    return conn


def sql(port: int, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = connect(port)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def api(container: Container, path: str) -> tuple[int, dict[str, Any]]:
    """GET http://127.0.0.1:8008<path> inside the container: (status, JSON body or {})."""
    code = ("import json,urllib.request as u,urllib.error as e\n"
            "try:\n r=u.urlopen('http://127.0.0.1:8008%s',timeout=3); s,b=r.status,r.read()\n"
            "except e.HTTPError as x: s,b=x.code,x.read()\n"
            "print(s); print(b.decode() or '{}')" % path)
    result = container.exec_run(["python3", "-c", code])
    if result.exit_code != 0:
        return 0, {}
    status, _, body = result.output.decode().partition("\n")
    try:
        return int(status), json.loads(body)
    except ValueError:
        return int(status), {}


def run_node(client: docker.DockerClient, project: "Project", name: str, env: dict[str, str],
             volumes: dict[str, dict[str, str]] | None = None) -> Container:
    """One more node of the image on the project's network (its SCOPE and etcd from `env`)."""
    return client.containers.run(IMAGE, detach=True, name=f"{project.name}_{name}", hostname=name,
                                 network=f"{project.name}_default", environment=env,
                                 volumes=volumes or {}, labels={"howdah.test": project.name})


def remove(container: Container) -> None:
    try:
        container.remove(force=True, v=True)
    except docker.errors.APIError:
        pass


def psql_value(container: Container, query: str) -> str | None:
    """`query`'s output on the container's local PostgreSQL; None when psql failed."""
    code, out = local_psql(container, query)
    return out if code == 0 else None


def local_psql(container: Container, query: str) -> tuple[int, str]:
    """psql over the container's own unix socket (works with the network cut)."""
    result = container.exec_run(["psql", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "postgres",
                                 "-v", "ON_ERROR_STOP=1", "-Atc", query])
    return result.exit_code, result.output.decode().strip()


@dataclass
class Project:
    """A docker-compose.yml project with a unique name and free host ports."""

    client: docker.DockerClient
    name: str = field(default_factory=lambda: f"howdahtest{os.getpid()}")
    primary_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)
    stats_port: int = field(default_factory=free_port)
    first_write_seconds: float | None = None

    def compose(self, *args: str) -> None:
        env = {**os.environ, "HOWDAH_PRIMARY_PORT": str(self.primary_port),
               "HOWDAH_REPLICA_PORT": str(self.replica_port), "HOWDAH_STATS_PORT": str(self.stats_port)}
        subprocess.run([str(ROOT / "tools/compose.sh"), "-p", self.name, "-f", str(ROOT / "docker-compose.yml"),
                        *args], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)

    @contextmanager
    def up(self, healthy_timeout: float, first_write_timeout: float | None = None,
           interval: float = 0.5) -> Iterator[None]:
        """`compose up -d`; then, with first_write_timeout, a committed write through the primary
        port (first_write_seconds: from the up); then one leader and two streaming replicas. The
        containers' log tails are printed when that fails; `compose down -v` at the end."""
        try:
            started = time.monotonic()
            self.compose("up", "-d")
            if first_write_timeout is not None:
                wait_for("a committed write through the primary port", lambda: sql(
                    self.primary_port, "create table if not exists up_probe(x int); insert into up_probe values (1)")
                    == [], timeout=first_write_timeout, interval=interval)
                self.first_write_seconds = time.monotonic() - started
                print(f"compose up -d -> first committed write through :5000: {self.first_write_seconds:.1f} s")
            wait_for("one leader and two streaming replicas", self.healthy, timeout=healthy_timeout)
            yield
        except Exception:
            print(self.logs())
            raise
        finally:
            self.compose("down", "-v", "--remove-orphans", "-t", "20")

    def container(self, service: str) -> Container:
        found = self.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.name}", f"com.docker.compose.service={service}"]})
        assert found, f"no container for service {service}"
        return found[0]

    def network(self) -> Any:
        return self.client.networks.get(f"{self.name}_default")

    def running_nodes(self) -> list[Container]:
        nodes = [self.container(n) for n in NODES]
        for node in nodes:
            node.reload()
        return [n for n in nodes if n.status == "running"]

    def leaders(self) -> list[str]:
        return [n.labels["com.docker.compose.service"] for n in self.running_nodes() if api(n, "/primary")[0] == 200]

    def streaming_replicas(self, leader: str) -> set[str]:
        code, out = local_psql(self.container(leader),
                               "select application_name from pg_stat_replication where state = 'streaming'")
        return set(out.split()) if code == 0 else set()

    def healthy(self) -> str | None:
        """The leader's service name when there is exactly one leader and two streaming replicas."""
        leaders = self.leaders()
        if len(leaders) != 1:
            return None
        replicas = self.streaming_replicas(leaders[0])
        return leaders[0] if replicas == set(NODES) - {leaders[0]} else None

    def logs(self) -> str:
        parts = []
        for service in (*NODES, "etcd", "etcd-auth", "haproxy"):
            try:
                tail = self.container(service).logs(tail=40).decode(errors="replace")
            except (AssertionError, docker.errors.APIError):
                continue
            parts.append(f"----- {service}\n{tail}")
        return "\n".join(parts)
