"""The VIP hook under docker compose (docker-compose.yml + docker-compose.vip.yml): the VIP
answers PostgreSQL on the primary, and after the primary's container is killed a client on the
compose network connecting to the VIP reaches the new primary.  All traffic stays between this
project's own containers."""
from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Iterator

import docker
import pytest
from docker.models.containers import Container

from .helpers import IMAGE, NODES, ROOT, Project, wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(900)]

SUBNET = os.environ.get("HOWDAH_VIP_SUBNET", "10.213.77.0/24")
VIP = os.environ.get("HOWDAH_VIP_ADDRESS", str(ipaddress.ip_network(SUBNET)[200]) + "/" + SUBNET.split("/")[1])
VIP_HOST = VIP.split("/")[0]


@dataclass
class VipProject(Project):
    """The compose project with the VIP overlay on top."""

    def compose(self, *args: str) -> None:
        env = {**os.environ, "HOWDAH_PRIMARY_PORT": str(self.primary_port),
               "HOWDAH_REPLICA_PORT": str(self.replica_port), "HOWDAH_STATS_PORT": str(self.stats_port),
               "HOWDAH_IMAGE": IMAGE, "HOWDAH_VIP_SUBNET": SUBNET, "HOWDAH_VIP_ADDRESS": VIP,
               "HOWDAH_NO_NEW_PRIVILEGES": "false",
               "HOWDAH_VIP_RANGE": str(list(ipaddress.ip_network(SUBNET).subnets())[0])}
        subprocess.run([str(ROOT / "tools/compose.sh"), "-p", self.name, "-f", str(ROOT / "docker-compose.yml"),
                        "-f", str(ROOT / "docker-compose.vip.yml"), *args], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def project(client: docker.DockerClient, image: str) -> Iterator[VipProject]:
    proj = VipProject(client, name=f"howdahvip{os.getpid()}")
    with proj.up(healthy_timeout=120, first_write_timeout=120):
        yield proj


def via_vip(client: Container) -> tuple[str, str] | None:
    """From inside `client`, connect to the VIP: (host name of the server, pg_is_in_recovery)."""
    result = client.exec_run(
        ["psql", f"host={VIP_HOST} user=postgres dbname=postgres connect_timeout=2", "-Atc",
         "select btrim(pg_read_file('/etc/hostname'), E' \\n'), pg_is_in_recovery()"],
        environment={"PGPASSWORD": "postgres"})
    if result.exit_code != 0:
        return None
    host, _, recovery = result.output.decode().strip().partition("|")
    return host, recovery


def holds_vip(node: Container) -> bool:
    result = node.exec_run(["ip", "-o", "addr", "show", "dev", "eth0"])
    return f" {VIP} " in result.output.decode()


def test_vip_answers_on_the_primary_and_follows_a_kill(project: VipProject) -> None:
    leader = wait_for("healthy cluster", project.healthy, timeout=90)
    replicas = [n for n in NODES if n != leader]
    client = project.container(replicas[0])
    wait_for(f"the VIP answering on {leader}", lambda: via_vip(client) == (leader, "f"), timeout=60)
    assert holds_vip(project.container(leader))
    assert not any(holds_vip(project.container(r)) for r in replicas)
    # the hook's output reaches docker logs once the hook exits (after its ARP announcements)
    wait_for("the VIP hook's output in docker logs", lambda: "howdah-callback: [vip] howdah-vip-hook: "
             + VIP in project.container(leader).logs().decode(errors="replace"), timeout=60)

    project.container(leader).kill()
    killed = time.monotonic()
    new = wait_for("a new leader after the kill", lambda: next(iter(project.leaders()), None), timeout=90)
    assert new != leader
    # ask from the surviving replica, so the client really crosses the network to the new primary
    other = next(n for n in replicas if n != new)
    wait_for(f"the VIP answering on {new}", lambda: via_vip(project.container(other)) == (new, "f"), timeout=60)
    moved = time.monotonic() - killed
    print(f"docker kill of {leader} -> VIP answering on {new}: {moved:.1f} s")
    result = project.container(other).exec_run(
        ["psql", f"host={VIP_HOST} user=postgres dbname=postgres", "-Atc",
         "create table if not exists vip_probe(x int); insert into vip_probe values (1); select count(*) from vip_probe"],
        environment={"PGPASSWORD": "postgres"})
    assert result.exit_code == 0, result.output

    # the old primary comes back as a replica and does not take the VIP
    project.container(leader).start()
    wait_for(f"{leader} rejoining as a streaming replica", lambda: project.healthy() == new, timeout=180)
    assert not holds_vip(project.container(leader))
    assert via_vip(project.container(leader)) == (new, "f")


def test_without_net_admin_the_hook_says_so(client: docker.DockerClient, image: str) -> None:
    """The same image and hook in a container without NET_ADMIN: one clear line, nothing changed."""
    container = client.containers.create(
        image, ["howdah-vip-hook", "on_role_change", "primary", "demo"],
        environment={"VIP_ADDRESS": "192.0.2.200/32", "VIP_INTERFACE": "lo", "HOWDAH_LEADER_CHECK": "off"},
        network_mode="none",
        entrypoint=[])
    try:
        container.start()
        code = container.wait(timeout=60)["StatusCode"]
        out = container.logs().decode(errors="replace").strip().splitlines()
    finally:
        container.remove(force=True)
    assert code == 3, out
    assert len(out) == 1 and "cap_add: [NET_ADMIN]" in out[0], out


def test_the_net_admin_helper_runs_only_the_vip_command(project: VipProject) -> None:
    """The capability helper refuses anything but `addr add|del <this VIP> dev eth0`."""
    leader = wait_for("a healthy cluster", project.healthy, timeout=120)
    node = project.container(next(n for n in NODES if n != leader))
    helper = "/usr/local/lib/howdah/netadmin"
    other = str(ipaddress.ip_address(VIP_HOST) + 1) + "/" + VIP.split("/")[1]
    for argv in (["route", "add", "default", "via", VIP_HOST], ["link", "set", "eth0", "down"],
                 ["addr", "add", other, "dev", "eth0"], ["addr", "add", VIP, "dev", "lo"],
                 ["addr", "flush", "dev", "eth0"], ["addr", "add", VIP, "dev", "eth0", "label", "x"]):
        result = node.exec_run([helper, *argv])
        assert result.exit_code == 64 and b"refused" in result.output, (argv, result.output)
    assert not holds_vip(node)
    assert node.exec_run(["sh", "-c", "test -w /etc/passwd"]).exit_code != 0
