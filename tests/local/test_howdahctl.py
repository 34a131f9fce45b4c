"""howdahctl against a real 3-node Howdah cluster (etcd, PostgreSQL 15, agents on 127.0.0.1).

The CLI runs as the installed console script with the same YAML file as the
agents (-c node.config_path). Most tests share one cluster and leave it
healthy (a leader and two streaming replicas) for the next; `remove` gets a
cluster of its own.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from harness import AgentNode, LocalCluster
from harness.config import HOWDAH_VENV
from harness.waiting import wait_for

pytestmark = pytest.mark.local
CTL = str(HOWDAH_VENV / "bin" / "howdahctl")
TIMING = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}


def ctl(c: LocalCluster, *args: str, stdin: str = "", timeout: float = 400) -> \
        subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATRONI", "HOWDAH"))}
    env["PYTHONUNBUFFERED"] = "1"
    res = subprocess.run([CTL, "-c", str(c.nodes[0].config_path), *args], input=stdin,
                         capture_output=True, text=True, timeout=timeout, env=env)
    sys.stderr.write(f"$ howdahctl {' '.join(args)} -> {res.returncode}\n{res.stdout}{res.stderr}")
    assert "Traceback" not in res.stderr
    return res


def ok(c: LocalCluster, *args: str, stdin: str = "", timeout: float = 400) -> str:
    res = ctl(c, *args, stdin=stdin, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return res.stdout


def fails(c: LocalCluster, *args: str, stdin: str = "") -> str:
    """The command exits 1 with exactly one line on stderr."""
    res = ctl(c, *args, stdin=stdin)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("howdahctl: "), res.stderr
    return res.stderr


def members(c: LocalCluster) -> dict[str, dict[str, Any]]:
    doc = json.loads(ok(c, "list", "--format", "json"))
    return {m["member"]: m for m in doc["members"]}


def healthy(c: LocalCluster) -> AgentNode:
    leader = c.wait_leader(180)
    c.wait_streaming(2, 300)
    return leader


@pytest.fixture(scope="module")
def shared(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    failed_before = request.session.testsfailed
    cluster = LocalCluster(3, scope="ctl", **TIMING)
    try:
        cluster.start()
        healthy(cluster)
        yield cluster
    finally:
        if request.session.testsfailed > failed_before:
            sys.stderr.write(f"\n===== cluster logs ({cluster.base}) =====\n"
                             + cluster.dump_logs(120) + "\n")
        cluster.close()


@pytest.fixture
def c(shared: LocalCluster) -> LocalCluster:
    healthy(shared)
    return shared


@pytest.fixture
def own(local_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    """A cluster of this test's own, for changes the shared one should not carry on with."""
    cluster = local_cluster(3, scope="ctl-own", **TIMING)
    healthy(cluster)
    return cluster


def show(node: AgentNode, setting: str) -> str | None:
    try:
        return str(node.sql(f"SHOW {setting}")[0][0])
    except Exception:  # noqa: BLE001 - postgres may be restarting
        return None


def test_list_shows_roles_states_timeline_and_lag(c: LocalCluster) -> None:
    leader = c.wait_leader(60)
    # members publish their positions once per HA cycle: on an idle cluster the lag
    # shown drops to 0 within a cycle or two of streaming
    rows = wait_for("both replicas streaming with no lag in the list", lambda: (lambda m: m if all(
        r["state"] == "streaming" and r["lag_mb"] == 0 for n, r in m.items()
        if n != leader.name) else None)(members(c)), 60)
    assert set(rows) == {"n1", "n2", "n3"}
    assert rows[leader.name]["role"] == "Leader" and rows[leader.name]["state"] == "running"
    for name, row in rows.items():
        assert row["timeline"] >= 1
        assert row["host"] == f"127.0.0.1:{c.node(name).pg_port}"
        if name != leader.name:
            assert row["role"] == "Replica" and row["lag_mb"] == 0
    table = ok(c, "list")
    assert table.startswith("+ Cluster: ctl (")
    assert f"| {leader.name}     | 127.0.0.1:{leader.pg_port} | Leader " in table


def test_list_watch_refreshes_until_interrupted(c: LocalCluster) -> None:
    proc = subprocess.Popen([CTL, "-c", str(c.nodes[0].config_path), "list", "--watch", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.count("+ Cluster: ctl") >= 2 and "Traceback" not in err


def test_switchover_to_a_named_candidate(c: LocalCluster) -> None:
    old = c.wait_leader(60)
    target = next(n for n in c.nodes if n is not old)
    fails(c, "switchover", "--candidate", target.name, stdin="n\n")
    assert c.dcs_key("leader") == old.name
    assert "not a member" in fails(c, "switchover", "--candidate", "n9", "--force")
    wrong = fails(c, "switchover", "--leader", target.name, "--candidate", old.name, "--force")
    assert "is not the leader" in wrong
    out = ok(c, "switchover", "--leader", old.name, "--candidate", target.name, "--force")
    assert f"{target.name} is the new leader" in out
    assert c.wait_leader(120).name == target.name
    wait_for(f"{old.name} back as a replica", lambda: old.role() == "replica", 180)


def test_scheduled_switchover_is_accepted_and_listed(c: LocalCluster) -> None:
    leader = c.wait_leader(60)
    target = next(n for n in c.nodes if n is not leader)
    when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
    try:
        out = ok(c, "switchover", "--candidate", target.name, "--scheduled", when, "--force")
        assert "+ Cluster: ctl" in out
        listing = ok(c, "list")
        assert "Switchover scheduled at:" in listing and target.name in listing
        assert json.loads(c.dcs_key("failover") or "{}").get("member") == target.name
    finally:
        leader.api("/switchover", "DELETE")
    assert c.dcs_key("leader") == leader.name


def test_failover_to_a_named_candidate(c: LocalCluster) -> None:
    old = c.wait_leader(60)
    target = next(n for n in c.nodes if n is not old)
    fails(c, "failover", "--force")
    out = ok(c, "failover", "--candidate", target.name, stdin="y\n")
    assert f"{target.name} is the new leader" in out
    assert c.wait_leader(120).name == target.name


def test_history_lists_timeline_switches(c: LocalCluster) -> None:
    if not json.loads(c.dcs_key("history") or "[]"):
        ok(c, "switchover", "--force")
        healthy(c)
    entries = wait_for("a history entry", lambda: json.loads(ok(c, "history", "-f", "json")))
    assert entries[-1]["timeline"] >= 1 and entries[-1]["lsn"] > 0
    table = ok(c, "history")
    assert "| TL | LSN" in table and str(entries[-1]["lsn"]) in table


def test_restart_a_member(c: LocalCluster) -> None:
    leader = c.wait_leader(60)
    replica = next(n for n in c.nodes if n is not leader)
    before = replica.postmaster_pid()
    fails(c, "restart", replica.name, stdin="\n")
    assert replica.postmaster_pid() == before
    ok(c, "restart", replica.name, "--force")
    wait_for("a new postmaster", lambda: replica.postmaster_pid() not in (None, before), 120)
    wait_for(f"{replica.name} running", lambda: members(c)[replica.name]["state"]
             in ("running", "streaming"), 120)


def test_reload_all_members(c: LocalCluster) -> None:
    def load_times() -> dict[str, Any]:
        return {n.name: n.sql("SELECT pg_conf_load_time()")[0][0] for n in c.nodes}
    before = load_times()
    time.sleep(1.1)
    out = ok(c, "reload", "--force")
    assert all(f"{n.name}: " in out for n in c.nodes)
    wait_for("every member to reload", lambda: all(
        t > before[name] for name, t in load_times().items()), 60)


def test_reinit_a_replica_and_wait(c: LocalCluster) -> None:
    leader = c.wait_leader(60)
    replica = next(n for n in c.nodes if n is not leader)
    marker = replica.data_dir / "howdahctl-reinit-marker"
    marker.write_text("gone after a reinit")
    assert "is the leader" in fails(c, "reinit", leader.name, "--force")
    fails(c, "reinit", replica.name, stdin="no\n")
    assert marker.exists()
    out = ok(c, "reinit", replica.name, "--force", "--wait")
    assert "reinitialized and running" in out
    assert not marker.exists()
    wait_for(f"{replica.name} streaming", lambda: replica.name in c.streaming(leader), 120)


def test_edit_config_set_and_pg(own: LocalCluster) -> None:
    c = own
    leader = c.wait_leader(60)
    assert "refusing the new config" in fails(c, "edit-config", "--set", "ttl=five", "--force")
    fails(c, "edit-config", "--pg", "work_mem=12MB", stdin="n\n")
    assert "work_mem" not in (c.dcs_key("config") or "")
    out = ok(c, "edit-config", "--set", "maximum_lag_on_failover=2097152",
             "--pg", "work_mem=12MB", stdin="y\n")
    assert "+maximum_lag_on_failover: 2097152" in out and "+    work_mem: 12MB" in out
    config = json.loads(c.dcs_key("config") or "{}")
    assert config["maximum_lag_on_failover"] == 2097152
    assert config["postgresql"]["parameters"]["work_mem"] == "12MB"
    assert config["ttl"] == TIMING["ttl"], "other keys are kept"
    c.wait_leader(120)
    wait_for("work_mem applied on the leader",
             lambda: show(leader, "work_mem") == "12MB", 90)
    assert ok(c, "edit-config", "--pg", "work_mem=12MB", "--force").strip() == "no changes"


def test_show_config_prints_the_dcs_config(c: LocalCluster) -> None:
    shown = yaml.safe_load(ok(c, "show-config"))
    assert shown == json.loads(c.dcs_key("config") or "{}")
    assert shown["ttl"] == TIMING["ttl"]


def test_pause_and_resume_wait_for_every_member(own: LocalCluster) -> None:
    c = own
    ok(c, "pause", "--wait", timeout=200)
    assert all(n.api("/patroni")[1].get("pause") is True for n in c.nodes)
    assert json.loads(c.dcs_key("config") or "{}")["pause"] is True
    assert "Maintenance mode: on" in ok(c, "list")
    assert "already paused" in fails(c, "pause")
    ok(c, "resume", "--wait", timeout=200)
    assert not any(n.api("/patroni")[1].get("pause") for n in c.nodes)
    assert "pause" not in json.loads(c.dcs_key("config") or "{}")
    assert "not paused" in fails(c, "resume")


def test_dsn_of_the_leader_and_of_a_member(c: LocalCluster) -> None:
    leader = c.wait_leader(60)
    assert ok(c, "dsn").strip() == f"host=127.0.0.1 port={leader.pg_port}"
    other = next(n for n in c.nodes if n is not leader)
    assert ok(c, "dsn", other.name).strip() == f"host=127.0.0.1 port={other.pg_port}"
    assert "not a member" in fails(c, "dsn", "n9")


def test_query_on_the_leader_and_on_a_replica(c: LocalCluster) -> None:
    leader = c.wait_leader(60)
    replica = next(n for n in c.nodes if n is not leader)
    out = ok(c, "query", "-c", "SELECT pg_is_in_recovery() AS rec, inet_server_port() AS port",
             "--format", "tsv")
    assert out.splitlines() == ["rec\tport", f"False\t{leader.pg_port}"]
    rows = json.loads(ok(c, "query", "-c", "SELECT pg_is_in_recovery() AS rec",
                         "--member", replica.name, "--format", "json"))
    assert rows == [{"rec": True}]
    assert "| rec " in ok(c, "query", "-c", "SELECT 1 AS rec", "--role", "replica")
    assert "syntax error" in fails(c, "query", "-c", "SELEC 1")


def test_basic_auth_comes_from_the_config(local_cluster: Callable[..., LocalCluster],
                                          tmp_path: Path) -> None:
    auth = {"username": "ops", "password": "ctl-secret"}
    c = local_cluster(3, scope="ctl-auth", extra={"restapi": {"authentication": auth}}, **TIMING)
    healthy(c)
    out = ok(c, "reload", "--force")
    assert all(f"{n.name}: " in out for n in c.nodes)
    tree = yaml.safe_load(c.nodes[0].config_path.read_text())
    del tree["restapi"]["authentication"]
    no_auth = tmp_path / "no-auth.yml"
    no_auth.write_text(yaml.safe_dump(tree))
    res = subprocess.run([CTL, "-c", str(no_auth), "reload", "n1", "--force"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "401" in res.stdout and "Traceback" not in res.stderr
    tree["ctl"] = {"authentication": auth}
    no_auth.write_text(yaml.safe_dump(tree))
    res = subprocess.run([CTL, "-c", str(no_auth), "reload", "n1", "--force"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_remove_wipes_the_cluster_after_typed_confirmation(
        local_cluster: Callable[..., LocalCluster]) -> None:
    c = local_cluster(3, scope="doomed", **TIMING)
    leader = healthy(c)
    aware = "Yes I am aware"
    fails(c, "remove", "doomed", stdin="wrong\n")
    fails(c, "remove", "doomed", stdin=f"doomed\n{aware}\nnot-the-leader\n")
    assert c.dcs_key("initialize") is not None
    for node in c.nodes:
        assert node.stop_sigterm(120) == 0
    out = ok(c, "remove", "doomed", stdin=f"doomed\n{aware}\n")
    assert "removed" in out
    for key in ("initialize", "config", "leader", f"members/{leader.name}", "history"):
        assert c.dcs_key(key) is None, key
    assert "not found" in fails(c, "show-config")
