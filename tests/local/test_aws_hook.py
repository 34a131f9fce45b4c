"""scripts/aws_hook.py against moto's EC2 in server mode on 127.0.0.1: the Elastic IP and the
role tags follow the primary, when the hook is run by hand and when a real cluster fails over."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness import LocalCluster
from harness.config import REPO
from harness.waiting import wait_for

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")
pytestmark = pytest.mark.local

HOOK = REPO / "scripts" / "aws_hook.py"
DISPATCH = REPO / "scripts" / "callback_dispatch.py"
PYTHON = REPO / ".venv" / "bin" / "python"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ec2_endpoint() -> Iterator[str]:
    """A fresh moto server (EC2 and the rest) on 127.0.0.1."""
    port = free_port()
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        wait_for("moto server", up, timeout=30)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Ec2:
    """The test's own view of the fake account: instances with volumes, one Elastic IP."""

    def __init__(self, url: str, count: int) -> None:
        self.client = boto3.client("ec2", endpoint_url=url, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        image = self.client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        made = self.client.run_instances(ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.micro",
                                         Placement={"AvailabilityZone": "us-east-1a"})
        self.instances = [i["InstanceId"] for i in made["Instances"]]
        for instance in self.instances:
            volume = self.client.create_volume(AvailabilityZone="us-east-1a", Size=10)["VolumeId"]
            self.client.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdf")
        address = self.client.allocate_address(Domain="vpc")
        self.allocation, self.public_ip = address["AllocationId"], address["PublicIp"]

    def eip_instance(self) -> str:
        found = self.client.describe_addresses(AllocationIds=[self.allocation])["Addresses"][0]
        return str(found.get("InstanceId") or "")

    def role_tags(self, instance: str) -> list[str]:
        """The Role tag of the instance, then of each of its volumes."""
        tags = self.client.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0].get("Tags", [])
        roles = [t["Value"] for t in tags if t["Key"] == "Role"]
        volumes = self.client.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance]}])
        for volume in volumes["Volumes"]:
            roles += [t["Value"] for t in volume.get("Tags", []) if t["Key"] == "Role"] or ["-"]
        return roles


def hook(url: str, ec2: Ec2, instance: str, action: str, role: str, **extra: str) -> subprocess.CompletedProcess[str]:
    # run by hand, without an agent to ask (the cluster test below runs the real check)
    env = {"PATH": "/usr/bin:/bin", **CREDENTIALS, "AWS_ENDPOINT": url, "AWS_INSTANCE_ID": instance,
           "EIP_ALLOCATION": ec2.allocation, "HOWDAH_LEADER_CHECK": "off", **extra}
    return subprocess.run([sys.executable, str(HOOK), action, role, "demo"], env=env, capture_output=True,
                          text=True, timeout=60)


def test_eip_and_tags_follow_a_failover_by_hand(ec2_endpoint: str) -> None:
    ec2 = Ec2(ec2_endpoint, 2)
    a, b = ec2.instances
    done = hook(ec2_endpoint, ec2, a, "on_start", "primary")
    assert done.returncode == 0, done.stderr
    assert ec2.eip_instance() == a
    assert set(ec2.role_tags(a)) == {"primary"} and len(ec2.role_tags(a)) >= 2  # instance + volume(s)
    assert hook(ec2_endpoint, ec2, b, "on_start", "replica").returncode == 0
    assert set(ec2.role_tags(b)) == {"replica"} and ec2.eip_instance() == a

    # failover: B is promoted, then A comes back as a replica
    done = hook(ec2_endpoint, ec2, b, "on_role_change", "primary")
    assert done.returncode == 0, done.stderr
    assert f"associated with {b} (was on {a})" in done.stderr
    assert ec2.eip_instance() == b and set(ec2.role_tags(b)) == {"primary"}
    assert hook(ec2_endpoint, ec2, a, "on_role_change", "replica").returncode == 0
    assert set(ec2.role_tags(a)) == {"replica"} and ec2.eip_instance() == b

    # idempotent; the public address works as the allocation too; a custom tag key
    done = hook(ec2_endpoint, ec2, b, "on_start", "primary", EIP_ALLOCATION=ec2.public_ip, HOWDAH_ROLE_TAG="pg-role")
    assert done.returncode == 0 and "already on" in done.stderr


def test_permanent_errors_are_one_line_and_nonzero(ec2_endpoint: str) -> None:
    ec2 = Ec2(ec2_endpoint, 1)
    done = hook(ec2_endpoint, ec2, ec2.instances[0], "on_role_change", "primary", EIP_ALLOCATION="eipalloc-0badbad")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "demo on_role_change primary" in lines[0] and "eipalloc-0badbad" in lines[0]
    # an endpoint that refuses connections is transient: retried until the budget, then one line
    done = hook(ec2_endpoint, ec2, ec2.instances[0], "on_start", "primary", AWS_ENDPOINT="http://127.0.0.1:9",
                HOWDAH_AWS_RETRY_SECONDS="1")
    assert done.returncode == 1 and "(transient), retry 1" in done.stderr
    assert "still failing after" in done.stderr.strip().splitlines()[-1]


def test_eip_follows_the_primary_of_a_real_cluster(ec2_endpoint: str,
                                                   local_cluster: Callable[..., LocalCluster]) -> None:
    ec2 = Ec2(ec2_endpoint, 3)
    # the agents run as postgres with a bare environment: one wrapper per node carries the AWS
    # settings and this node's instance id; the dispatcher runs it as the image would
    d = Path(tempfile.mkdtemp(prefix="howdah-aws-"))
    os.chmod(d, 0o777)
    log = d / "callbacks.log"
    names = ("n1", "n2", "n3")
    node_extra: dict[str, dict[str, Any]] = {}
    for name, instance in zip(names, ec2.instances):
        wrapper = d / f"aws-{name}.sh"
        exports = {**CREDENTIALS, "AWS_ENDPOINT": ec2_endpoint, "AWS_INSTANCE_ID": instance,
                   "EIP_ALLOCATION": ec2.allocation}
        wrapper.write_text("#!/bin/sh\n" + "".join(f"export {k}='{v}'\n" for k, v in exports.items())
                           + f"exec {PYTHON} {HOOK} \"$@\"\n")
        wrapper.chmod(0o755)
        command = f"{PYTHON} {DISPATCH} --log {log} --run aws={wrapper}"
        node_extra[name] = {"postgresql": {"callbacks": {a: command for a in ("on_start", "on_role_change")}}}
    instance_of = dict(zip(names, ec2.instances))

    c = local_cluster(3, ttl=8, loop_wait=1, retry_timeout=3, node_extra=node_extra)
    leader = c.wait_leader(180)
    c.wait_streaming(2, 300)
    wait_for("the EIP on the first primary's instance", lambda: ec2.eip_instance() == instance_of[leader.name],
             timeout=60)
    wait_for("role tags on every instance", lambda: sorted(ec2.role_tags(i)[0] if ec2.role_tags(i) else "" for i in
                                                           ec2.instances) == ["primary", "replica", "replica"],
             timeout=60)

    leader.kill9()
    killed = time.monotonic()
    new = c.wait_leader(120, exclude=[leader.name])
    wait_for("the EIP on the new primary's instance", lambda: ec2.eip_instance() == instance_of[new.name],
             timeout=60)
    moved = time.monotonic() - killed
    # the hook moves the address first, then tags: wait for the tags too
    wait_for("the new primary's instance and volumes tagged primary",
             lambda: set(ec2.role_tags(instance_of[new.name])) == {"primary"}, timeout=60)
    print(f"kill -9 of {leader.name} -> EIP on {new.name}'s instance after {moved:.1f} s")
    text = log.read_text()
    assert f"aws on_role_change primary {c.nodes[0].config['scope']}: exited with 0" in text


@pytest.mark.parametrize("timeout", [10, 30])
def test_a_hanging_ec2_ends_the_hook_before_the_callback_timeout(tmp_path: Path, timeout: int) -> None:
    # an EC2 endpoint that takes connections and never answers: every attempt runs into its read
    # timeout; the run (retries, backoff, the boto3 import) still ends by itself, with one line,
    # before the dispatcher's per-hook timeout would kill it
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        log = tmp_path / "callbacks.log"
        env = {"PATH": "/usr/bin:/bin", **CREDENTIALS, "AWS_ENDPOINT": f"http://127.0.0.1:{hole.getsockname()[1]}",
               "AWS_INSTANCE_ID": "i-0123456789abcdef0", "EIP_ALLOCATION": "eipalloc-0123456789abcdef0",
               "HOWDAH_LEADER_CHECK": "off", "HOWDAH_AWS_RETRY_SECONDS": "600"}
        started = time.monotonic()
        subprocess.run([sys.executable, str(DISPATCH), "--log", str(log), "--timeout", str(timeout),
                        "--run", f"aws={sys.executable} {HOOK}", "on_role_change", "primary", "demo"],
                       env=env, timeout=timeout + 60, check=False)
        took = time.monotonic() - started
    text = log.read_text()
    assert "killed after" not in text, text
    assert "aws on_role_change primary demo: exited with 1" in text, text
    assert "still failing after" in text, text
    if timeout >= 30:
        assert "(transient), retry 1" in text, text
    assert took < timeout, f"{took:.1f}s for a {timeout}s hook timeout:\n{text}"
