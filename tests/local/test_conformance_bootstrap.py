"""Conformance with Patroni 4.1.5: a bootstrap that fails (issue 9, item 3).

Patroni frees the initialize key, moves the new data directory aside to
<data_dir>.failed and exits with status 1 ("Failed to bootstrap cluster");
it never tries again by itself, the supervisor's restart policy decides.
Howdah does the same and says why in one CRITICAL line. Each scenario runs
on both agents from the same YAML.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

from harness import LocalCluster, wait_until

pytestmark = [pytest.mark.local, pytest.mark.patroni, pytest.mark.own_dcs,
              pytest.mark.timeout(600)]
KINDS = ["patroni", "howdah"]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
SCENARIOS: dict[str, tuple[dict[str, Any], str]] = {
    # name: (config extra, what Howdah's CRITICAL line names)
    "custom method exits 1": (
        {"bootstrap": {"method": "broken", "broken": {"command": "/bin/false"}}},
        "bootstrap.broken.command exited with status 1"),
    "initdb refuses its options": (
        {"bootstrap": {"initdb": [{"encoding": "NO_SUCH_ENCODING"}]}}, "initdb failed"),
    "postgres does not start after initdb": (
        {"bootstrap": {"dcs": {"postgresql": {"parameters": {
            "shared_preload_libraries": "no_such_library_here"}}}}},
        "postgres did not start after initdb"),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_bootstrap_gives_up_and_exits_non_zero(
        kind: str, scenario: str, patroni_venv: Any,
        local_cluster: Callable[..., LocalCluster]) -> None:
    extra, cause = SCENARIOS[scenario]
    cluster = local_cluster(1, kind=kind, extra=extra, dcs="etcd3", **FAST)
    node = cluster.nodes[0]
    assert node.proc is not None
    wait_until(lambda: node.proc is not None and node.proc.poll() is not None, 120,
               what=f"{kind} exits after the failed bootstrap", details=cluster.dump_logs)
    assert node.proc.poll() == 1
    assert cluster.dcs_key("initialize") is None
    assert cluster.dcs_key("leader") is None
    assert not (node.data_dir / "PG_VERSION").exists()
    failed = node.data_dir.with_name(node.data_dir.name + ".failed")
    assert failed.is_dir(), "the failed data directory is kept aside"
    log = node.log_text(400)
    if kind == "howdah":
        critical = [line for line in log.splitlines() if "CRITICAL" in line]
        assert len(critical) == 1 and cause in critical[0], critical
        assert log.count("won the initialize race") == 1, "bootstrap was tried again"
    else:
        assert "Failed to bootstrap cluster" in log
