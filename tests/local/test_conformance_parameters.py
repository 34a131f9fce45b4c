"""Conformance with Patroni 4.1.5: PostgreSQL parameters from a config written
for another major (issue 9, item 1). Each scenario runs on both agents from the
same YAML and asserts the same observable outcome.

Runs on etcd3 whatever the --dcs pass (own_dcs): the DCS plays no part here.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

from harness import LocalCluster, wait_until

pytestmark = [pytest.mark.local, pytest.mark.patroni, pytest.mark.own_dcs,
              pytest.mark.timeout(600)]
KINDS = ["patroni", "howdah"]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}


def one_node(local_cluster: Callable[..., LocalCluster], kind: str,
             dcs_parameters: dict[str, Any]) -> LocalCluster:
    extra = {
        "bootstrap": {"dcs": {"postgresql": {"parameters": dcs_parameters}}},
        # the harness sets wal_keep_size locally, which would win over the DCS
        "postgresql": {"parameters": {"wal_keep_size": None}},
    }
    return local_cluster(1, kind=kind, extra=extra, dcs="etcd3", **FAST)


@pytest.mark.parametrize("kind", KINDS)
def test_wal_keep_segments_becomes_wal_keep_size_and_removed_names_are_left_out(
        kind: str, patroni_venv: Any, local_cluster: Callable[..., LocalCluster]) -> None:
    cluster = one_node(local_cluster, kind, {"wal_keep_segments": 100,
                                             "checkpoint_segments": 8})
    leader = cluster.wait_leader(timeout=180)
    assert leader.sql("SHOW wal_keep_size") == [("1600MB",)]
    conf = (leader.data_dir / "postgresql.conf").read_text()
    assert "checkpoint_segments" not in conf and "wal_keep_segments" not in conf
    wait_until(lambda: any("WARNING" in line and "checkpoint_segments" in line
                           for line in leader.log_text(400).splitlines()), 30,
               what=f"{kind} warns that checkpoint_segments is left out")


@pytest.mark.parametrize("kind", KINDS)
def test_a_parameter_name_that_is_no_identifier_never_reaches_postgresql_conf(
        kind: str, patroni_venv: Any, local_cluster: Callable[..., LocalCluster]) -> None:
    """Deliberate difference: Patroni 4.1.5 answers 200 and, for a dotted name,
    writes the name's second line into postgresql.conf as a setting of its own;
    Howdah refuses the config with a 400 naming the field and writes nothing."""
    cluster = one_node(local_cluster, kind, {})
    leader = cluster.wait_leader(timeout=180)
    code, body = leader.api("/config", "PATCH",
                            {"postgresql": {"parameters": {"a.b\nfsync": "off"}}})
    if kind == "patroni":
        assert code == 200
        return
    assert code == 400 and "postgresql.parameters" in str(body), (code, body)
    code, config = leader.api("/config")
    assert code == 200 and "a.b\nfsync" not in config["postgresql"]["parameters"]
    assert "fsync" not in (leader.data_dir / "postgresql.conf").read_text()
