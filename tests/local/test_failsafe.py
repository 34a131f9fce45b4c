"""Failsafe mode, side by side with Patroni 4.1.5: the /failsafe key and GET /failsafe.

Only end states are awaited (generous timeouts)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from harness import LocalCluster, wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}


@pytest.mark.parametrize("kind", ["howdah", pytest.param("patroni", marks=pytest.mark.patroni)])
def test_the_leader_publishes_every_member_in_the_failsafe_key(
        kind: str, patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    extra = {"bootstrap": {"dcs": {"failsafe_mode": True}}}
    cluster = local_cluster(2, kind=kind, extra=extra, **FAST)
    cluster.wait_leader(timeout=180)
    cluster.wait_streaming(1, timeout=300)
    want = {n.name: f"{n.api_url}/patroni" for n in cluster.nodes}

    def key() -> dict[str, Any]:
        raw = cluster.dcs_key("failsafe")
        return json.loads(raw) if raw else {}
    wait_until(lambda: key() == want, 120, what="/failsafe lists both members",
               details=lambda: f"{key()}\n" + cluster.dump_logs(40))
    for node in cluster.nodes:
        wait_until(lambda: node.api("/failsafe") == (200, want), 60,
                   what=f"GET /failsafe on {node.name}",
                   details=lambda: f"{node.api('/failsafe')}")
