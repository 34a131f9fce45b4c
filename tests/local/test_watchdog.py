"""The watchdog section on a real node (issue 10 item 9), with a stand-in device
the test owns: a regular file, which answers no watchdog ioctl.

Howdah's behaviour, asserted explicitly: `required` refuses to lead (the
cluster is never bootstrapped, nothing is written to the device),
`automatic` leads without a watchdog.  Patroni 4.1.5 run on the same stand-in
(a regular file and a FIFO, by hand; the regular file below) does the same:
"Inappropriate ioctl for device", "Cancelling bootstrap because watchdog
activation failed" with `required`, and leads with `automatic`; it writes
nothing to the device either.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

from harness import LocalCluster
from harness.waiting import wait_for

pytestmark = pytest.mark.local

FAST = {"ttl": 8, "loop_wait": 1, "retry_timeout": 3}


def started(make: Callable[..., LocalCluster], mode: str,
            kind: str = "howdah") -> tuple[LocalCluster, Path]:
    """One node whose watchdog.device is a regular file in the cluster's
    directory (reachable by the postgres user the agent runs as)."""
    timing = FAST if kind == "howdah" else {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
    c = make(1, kind=kind, start_agents=False, **timing)
    assert c.base is not None
    dev = c.base / "watchdog"
    dev.write_bytes(b"")
    dev.chmod(0o666)
    c.nodes[0].config["watchdog"] = {"mode": mode, "device": str(dev)}
    c.start_agents()
    return c, dev


def test_required_refuses_to_lead_with_a_device_that_is_no_watchdog(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c, dev = started(local_cluster, "required")
    node = c.nodes[0]
    wait_for("the agent to refuse the device",
             lambda: "not a watchdog device" in node.log_path.read_text(errors="replace"), 90)
    time.sleep(3 * FAST["ttl"])
    assert c.dcs_key("leader") is None, "a node whose required watchdog is missing took the lock"
    assert c.dcs_key("initialize") in (None, ""), "it must not bootstrap without its watchdog"
    assert node.api("/primary")[0] != 200
    assert dev.read_bytes() == b"", "nothing may be written to a device that is no watchdog"


def test_automatic_leads_without_a_watchdog(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c, dev = started(local_cluster, "automatic")
    leader = c.wait_leader(180)
    assert leader.is_writable()
    assert "leading without a watchdog" in leader.log_path.read_text(errors="replace")
    assert dev.read_bytes() == b""


@pytest.mark.patroni
def test_patroni_required_refuses_the_same_stand_in(
        local_cluster: Callable[..., LocalCluster], patroni_venv: Path) -> None:
    c, dev = started(local_cluster, "required", kind="patroni")
    node = c.nodes[0]
    wait_for("Patroni to refuse the device",
             lambda: "watchdog" in node.log_path.read_text(errors="replace").lower()
             and "Cancelling bootstrap" in node.log_path.read_text(errors="replace"), 120)
    assert c.dcs_key("leader") is None
    assert dev.read_bytes() == b""
