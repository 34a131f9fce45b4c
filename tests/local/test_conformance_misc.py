"""Smaller Patroni 4.1.5 behaviours (issue 9 item 9), side by side: the same
YAML for Patroni (bench/.venv-patroni) and Howdah, the same assertions.

* tags: the boolean tags left at false are not published (member key,
  GET /patroni, patronictl list and howdahctl list); nofailover/failover_priority
  conflicts are logged and the boolean tag wins;
* ``patroni.dynamic.json`` is kept in the data directory;
* a scheduled restart is published in the member key (patronictl list shows it)
  and withdrawn when deleted;
* in synchronous mode a switchover to a non-synchronous member answers 412;
* the tags are read again on SIGHUP and POST /reload, their conflicts logged again;
* a second agent with a live member's name logs CRITICAL and exits non-zero, after
  waiting for a DCS that does not answer at its start (nothing started meanwhile);
* ``primary_start_timeout: 0``: a crashed primary is failed over, not restarted;
* a manual failover whose candidate died falls back to the ordinary race;
* ``patroni.dynamic.json`` is read back: a leader writes the config key back when the
  DCS lost it, and an agent started while there is none goes by the cache;
* POST /reload takes the local postgresql.parameters (restart-only ones: pending_restart
  and pending_restart_reason, in the API, the member key and both ctl lists, until a restart;
  max_connections & co. only from the DCS); a broken file is logged, the agent runs on.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import subprocess
import time
from typing import Any, Callable

import pytest
import yaml

from harness import AgentNode, LocalCluster, wait_until
from harness.config import HOWDAH_VENV, PATRONI_VENV
from harness import web
from harness.proxy import TcpProxy

pytestmark = [pytest.mark.local, pytest.mark.timeout(900)]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
KINDS = [pytest.param("patroni", marks=pytest.mark.patroni), "howdah"]
ALL_FALSE = {"clonefrom": False, "nofailover": False, "noloadbalance": False, "nosync": False,
             "nostream": False, "custom": False}
TAGS = {"n1": ALL_FALSE,
        "n2": {"nofailover": False, "failover_priority": 0, "clonefrom": True},
        "n3": {"nofailover": True, "failover_priority": 5}}
# what Patroni 4.1.5 published for TAGS (observed, and asserted for both below)
SHOWN = {"n1": {"custom": False},
         "n2": {"nofailover": False, "failover_priority": 0, "clonefrom": True},
         "n3": {"nofailover": True, "failover_priority": 5}}
CONFLICTS = {
    "n2": "Conflicting configuration between nofailover: False and failover_priority: 0. "
          "Defaulting to nofailover: False",
    "n3": "Conflicting configuration between nofailover: True and failover_priority: 5. "
          "Defaulting to nofailover: True"}
WHEN = "2099-01-01T00:00:00+00:00"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATRONI", "HOWDAH"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _ctl(exe: str, node: AgentNode, *args: str) -> str:
    res = subprocess.run([exe, "-c", str(node.config_path), *args], capture_output=True,
                         text=True, timeout=120, env=_env())
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def patronictl(node: AgentNode, *args: str) -> str:
    return _ctl(str(PATRONI_VENV / "bin" / "patronictl"), node, *args)


def howdahctl(node: AgentNode, *args: str) -> str:
    return _ctl(str(HOWDAH_VENV / "bin" / "howdahctl"), node, *args)


def member_key(cluster: LocalCluster, name: str) -> dict[str, Any]:
    raw = cluster.dcs_key(f"members/{name}")
    return json.loads(raw) if raw else {}


@pytest.mark.parametrize("kind", KINDS)
def test_tags_cache_schedule_sync_switchover_and_duplicate_name(
        kind: str, request: pytest.FixtureRequest,
        local_cluster: Callable[..., LocalCluster]) -> None:
    request.getfixturevalue("patroni_venv")  # patronictl lists the Howdah cluster too
    cluster = local_cluster(3, kind=kind, tags=TAGS, **FAST,
                            extra={"bootstrap": {"dcs": {"synchronous_mode": True}}})
    leader = cluster.wait_leader(180)
    cluster.wait_streaming(2, 300)

    # tags: published as Patroni filters them, conflicts logged
    for node in cluster.nodes:
        wait_until(lambda: member_key(cluster, node.name).get("tags", {}) == SHOWN[node.name]
                   and (node.api("/patroni")[1] or {}).get("tags", {}) == SHOWN[node.name],
                   60, what=f"{node.name} publishes {SHOWN[node.name]}",
                   details=lambda: json.dumps(member_key(cluster, node.name)))
        if node.name in CONFLICTS:
            assert CONFLICTS[node.name] in node.log_text(100000), node.name
    for text in (patronictl(leader, "list"), howdahctl(leader, "list")):
        n1_row = next(ln for ln in text.splitlines() if ln.startswith("| n1 "))
        assert "custom: false" in n1_row and "clonefrom" not in text.split("| n2 ")[0], text
        assert "noloadbalance" not in text and "nosync" not in text, text

    # patroni.dynamic.json in every data directory, with the DCS config
    dcs_config = json.loads(cluster.dcs_key("config") or "{}")
    for node in cluster.nodes:
        path = node.data_dir / "patroni.dynamic.json"
        wait_until(path.exists, 60, what=f"{path} written")
        doc = json.loads(path.read_text())
        assert {k: doc.get(k) for k in ("ttl", "loop_wait", "retry_timeout", "synchronous_mode")} \
            == {k: dcs_config.get(k) for k in ("ttl", "loop_wait", "retry_timeout",
                                               "synchronous_mode")}, (node.name, doc)

    # a scheduled restart is published in the member key; patronictl list shows it
    replica = next(n for n in cluster.nodes if n is not leader)
    assert replica.api("/restart", "POST", {"schedule": WHEN}) == (202, "Restart scheduled")
    assert replica.api("/restart", "POST", {"schedule": WHEN}) == \
        (409, "Another restart is already scheduled")
    wait_until(lambda: member_key(cluster, replica.name).get("scheduled_restart", {})
               .get("schedule") == WHEN, 60, what="scheduled_restart in the member key",
               details=lambda: json.dumps(member_key(cluster, replica.name)))
    assert (replica.api("/patroni")[1] or {}).get("scheduled_restart", {}).get("schedule") == WHEN
    assert "postmaster_start_time" not in replica.api("/patroni")[1]["scheduled_restart"]
    text = patronictl(leader, "list")
    assert "Scheduled restart" in text, text
    row = next(ln for ln in text.splitlines() if ln.startswith(f"| {replica.name} "))
    assert WHEN in row, text
    assert WHEN in howdahctl(leader, "list")
    assert replica.api("/restart", "DELETE") == (200, "scheduled restart deleted")
    wait_until(lambda: "scheduled_restart" not in member_key(cluster, replica.name), 60,
               what="scheduled_restart withdrawn")

    # synchronous mode: a switchover to a non-synchronous member is refused
    wait_until(lambda: json.loads(cluster.dcs_key("sync") or "{}").get("sync_standby"), 120,
               what="a synchronous standby")
    sync = str(json.loads(cluster.dcs_key("sync") or "{}")["sync_standby"]).split(",")
    other = next(n for n in cluster.nodes if n is not leader and n.name not in sync)
    assert leader.api("/switchover", "POST", {"leader": leader.name, "candidate": other.name}) \
        == (412, "candidate name does not match with sync_standby"), kind
    assert cluster.dcs_key("leader") == leader.name

    # tags are read again on reload (SIGHUP, POST /reload) and their conflicts logged again
    n1 = cluster.node("n1")
    for tags, how in (({"nofailover": True, "failover_priority": 3}, "SIGHUP"),
                      ({"nofailover": False, "failover_priority": 0}, "POST /reload"),
                      (ALL_FALSE, "POST /reload")):
        n1.config["tags"] = tags
        n1.config_path.write_text(yaml.safe_dump(n1.config, sort_keys=False))
        if how == "SIGHUP":
            assert n1.agent_pid is not None
            os.kill(n1.agent_pid, signal.SIGHUP)
        else:
            assert n1.api("/reload", "POST") == (202, "reload scheduled")
        shown = SHOWN["n1"] if tags is ALL_FALSE else tags  # both kept: they conflict
        wait_until(lambda: member_key(cluster, "n1").get("tags") == shown, 60,
                   what=f"n1 publishes {shown} after {how}",
                   details=lambda: json.dumps(member_key(cluster, "n1")))
        if tags is not ALL_FALSE:
            warning = (f"Conflicting configuration between nofailover: {tags['nofailover']} and "
                       f"failover_priority: {tags['failover_priority']}. Defaulting to "
                       f"nofailover: {tags['nofailover']}")
            wait_until(lambda: warning in n1.log_text(100000), 30,
                       what=f"{kind} logs the conflict after {how}")

    # a second agent with a live member's name refuses to start; while the DCS does not
    # answer it waits (starting nothing), then it finds the name taken
    pg_port, api_port, etcd_port = cluster.ports.take_many(3)
    assert cluster.base is not None and cluster.etcd is not None
    first = cluster.nodes[0]
    spec = dataclasses.replace(first.spec, workdir=cluster.base / "duplicate", pg_port=pg_port,
                               api_port=api_port, etcd_hosts=[f"127.0.0.1:{etcd_port}"])
    dup = AgentNode(spec, kind)
    with TcpProxy(etcd_port, cluster.etcd.client_port) as path:
        path.drop()  # connections to the DCS hang
        dup.start()
        assert dup.proc is not None
        try:
            time.sleep(20)
            assert dup.proc.poll() is None, f"{kind} did not wait for the DCS:\n" \
                + dup.log_text(60)
            assert not (spec.workdir / "data" / "PG_VERSION").exists()
            path.heal()
            code = dup.proc.wait(120)
        finally:
            dup.destroy()
    log = dup.log_text(100)
    assert code != 0, log
    assert "CRITICAL" in log and f"Can't start; there is already a node named '{first.name}' " \
        "running" in log, log
    assert not (spec.workdir / "data" / "PG_VERSION").exists()
    assert member_key(cluster, first.name).get("api_url", "").endswith(f":{first.api_port}/patroni")


@pytest.mark.parametrize("kind", KINDS)
def test_primary_start_timeout_zero_fails_over_after_a_crash(
        kind: str, streaming_pair: Callable[..., tuple[LocalCluster, AgentNode, AgentNode]]) -> None:
    cluster, leader, replica = streaming_pair(kind, **FAST,
                                              extra={"bootstrap": {"dcs": {"primary_start_timeout": 0}}})
    pid = leader.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    new = cluster.wait_leader(120, exclude=[leader.name])
    took = time.monotonic() - started
    assert new is replica
    # the crashed primary was stopped, not restarted as a primary: it follows
    wait_until(lambda: leader.role() == "replica" and leader.api("/replica")[0] == 200, 180,
               what="the crashed primary follows the new leader", details=cluster.dump_logs)
    assert not leader.is_writable()
    wait_until(replica.is_writable, 60, what=f"{replica.name} takes writes")
    sys_log = leader.log_text(100000)
    assert ("Primary crashed. Failing over." in sys_log) if kind == "patroni" else \
        ("primary_start_timeout is 0: failing over" in sys_log), sys_log[-3000:]
    print(f"{kind}: new leader {took:.1f}s after the postmaster was killed")


@pytest.mark.parametrize("kind", KINDS)
def test_manual_failover_to_a_member_that_died_falls_back(
        kind: str, request: pytest.FixtureRequest,
        local_cluster: Callable[..., LocalCluster]) -> None:
    if kind == "patroni":
        request.getfixturevalue("patroni_venv")
    cluster = local_cluster(3, kind=kind, **FAST)
    leader = cluster.wait_leader(180)
    cluster.wait_streaming(2, 300)
    target, survivor = [n for n in cluster.nodes if n is not leader]
    # the named candidate and the old leader die; the failover key names the dead
    # member (its member key lives on until its ttl), and the lock is gone
    target.kill9()
    leader.kill9()
    client = cluster.dcs_client(name=leader.name)
    assert client.write_failover({"member": target.name})
    assert client.release_leader()
    new = cluster.wait_leader(150)
    assert new is survivor, kind
    wait_until(survivor.is_writable, 60, what=f"{survivor.name} takes writes")


def delete_key(cluster: LocalCluster, key: str) -> None:
    """Delete /service/<scope>/<key> behind the agents' backs (v3 or v2 API)."""
    etcd, path = cluster.etcd, f"/service/{cluster.scope}/{key}"
    assert etcd is not None
    if etcd.v2:
        web.request(f"{etcd.url}/v2/keys{path}", method="DELETE")
    else:
        etcd._request("/v3/kv/deleterange", {"key": base64.b64encode(path.encode()).decode()})
    assert cluster.dcs_key(key) is None


@pytest.mark.parametrize("kind", KINDS)
def test_the_cached_dynamic_config_is_written_back_when_the_dcs_lost_it(
        kind: str, request: pytest.FixtureRequest,
        local_cluster: Callable[..., LocalCluster]) -> None:
    """patroni.dynamic.json is read back: a leader writes the config it goes by back
    into a DCS that lost the config key, and an agent started while the DCS holds
    none goes by the cache, not by bootstrap.dcs."""
    if kind == "patroni":
        request.getfixturevalue("patroni_venv")
    cluster = local_cluster(1, kind=kind, **FAST)
    node = cluster.wait_leader(180)
    code, _ = node.api("/config", "PATCH", {"maximum_lag_on_failover": 7777,
                                            "postgresql": {"parameters": {"work_mem": "7MB"}}})
    assert code == 200
    cache = node.data_dir / "patroni.dynamic.json"
    wait_until(lambda: cache.exists() and json.loads(cache.read_text())
               .get("maximum_lag_on_failover") == 7777, 60, what="the change in the cache")

    def config() -> dict[str, Any]:
        return cluster.dcs_json("config")

    # deleted while the leader runs: written back from what it goes by
    delete_key(cluster, "config")
    wait_until(lambda: config().get("maximum_lag_on_failover") == 7777, 60,
               what=f"{kind} writes the config back", details=cluster.dump_logs)
    assert config()["postgresql"]["parameters"]["work_mem"] == "7MB"

    # deleted while the agent is stopped; bootstrap.dcs now says otherwise: the cache wins
    assert node.stop_sigterm(120) == 0
    delete_key(cluster, "config")
    node.config["bootstrap"]["dcs"]["maximum_lag_on_failover"] = 5555
    node.config["bootstrap"]["dcs"]["postgresql"]["parameters"]["work_mem"] = "5MB"
    node.start()
    wait_until(lambda: cluster.leader() is node, 180, what=f"{kind} leads again",
               details=cluster.dump_logs)
    wait_until(lambda: config().get("maximum_lag_on_failover") == 7777, 60,
               what=f"{kind} writes the cached config", details=cluster.dump_logs)
    assert config()["postgresql"]["parameters"]["work_mem"] == "7MB"
    wait_until(lambda: node.sql("SHOW work_mem") == [("7MB",)], 60, what="work_mem from the cache")


@pytest.mark.parametrize("kind", KINDS)
def test_reload_takes_the_local_postgresql_parameters(
        kind: str, request: pytest.FixtureRequest,
        local_cluster: Callable[..., LocalCluster]) -> None:
    """POST /reload reads the YAML's postgresql.parameters and pg_hba again and applies
    them: work_mem is in force (SHOW), pg_hba.conf is rewritten, a restart-only one (shared_buffers) shows
    pending_restart with pending_restart_reason (GET /patroni, /cluster, the member key,
    patronictl and howdahctl list), gone after a restart; a file that no longer parses is
    logged and the agent keeps running with what it had."""
    request.getfixturevalue("patroni_venv")  # patronictl lists the Howdah cluster too
    cluster = local_cluster(1, kind=kind, **FAST)
    node = cluster.wait_leader(180)
    assert node.sql("SHOW work_mem") == [("4MB",)]
    params = node.config["postgresql"]["parameters"]
    params.update({"work_mem": "12MB", "shared_buffers": "24MB", "max_connections": 60})
    marker = "host all all 127.0.0.2/32 md5"
    node.config["postgresql"]["pg_hba"] = [*node.config["bootstrap"]["pg_hba"], marker]
    node.config_path.write_text(yaml.safe_dump(node.config, sort_keys=False))
    assert node.api("/reload", "POST") == (202, "reload scheduled")
    wait_until(lambda: node.sql("SHOW work_mem") == [("12MB",)], 60,
               what=f"{kind} applies the local work_mem", details=cluster.dump_logs)
    wait_until(lambda: node.api("/patroni")[1].get("pending_restart") is True, 60,
               what=f"{kind} shows pending_restart for shared_buffers",
               details=lambda: json.dumps(node.api("/patroni")[1]))
    hba = node.data_dir / "pg_hba.conf"
    wait_until(lambda: marker in hba.read_text(), 30, what=f"{kind} writes postgresql.pg_hba")
    assert node.sql("SELECT count(*) FROM pg_hba_file_rules WHERE address = '127.0.0.2'") \
        == [(1,)]
    # max_connections is for the DCS config alone: the local value takes no effect
    assert node.sql("SHOW max_connections") == [("50",)]
    assert node.sql("SELECT name FROM pg_settings WHERE pending_restart") == [("shared_buffers",)]
    assert node.sql("SHOW shared_buffers") == [("16MB",)]
    # which parameter and its values, in the greatest exact unit (not 3072 8kB pages), in
    # GET /patroni, GET /cluster and the member key, as Patroni 4.1.5 publishes them
    reason = {"shared_buffers": {"old_value": "16MB", "new_value": "24MB"}}
    assert node.api("/patroni")[1]["pending_restart_reason"] == reason
    wait_until(lambda: member_key(cluster, node.name).get("pending_restart_reason") == reason,
               60, what=f"{kind} publishes the reason in the member key",
               details=lambda: json.dumps(member_key(cluster, node.name)))
    assert member_key(cluster, node.name)["pending_restart"] is True
    assert node.api("/cluster")[1]["members"][0]["pending_restart_reason"] == reason
    for text in (patronictl(node, "list"), howdahctl(node, "list")):  # from the member key
        assert "Pending restart reason" in text and "shared_buffers: 16MB->24MB" in text, text
    # a restart takes the new value; flag and reason are gone from the API and the DCS
    assert node.api("/restart", "POST", {})[0] == 200
    assert node.sql("SHOW shared_buffers") == [("24MB",)]
    wait_until(lambda: not {"pending_restart", "pending_restart_reason"}
               & (set(node.api("/patroni")[1]) | set(member_key(cluster, node.name))),
               60, what=f"{kind} drops pending_restart after the restart",
               details=lambda: json.dumps(member_key(cluster, node.name)))
    # the same through PATCH /config, for a parameter only the DCS config sets
    patch = {"postgresql": {"parameters": {"max_connections": 70}}}
    assert node.api("/config", "PATCH", patch)[0] == 200
    reason = {"max_connections": {"old_value": "50", "new_value": "70"}}
    wait_until(lambda: member_key(cluster, node.name).get("pending_restart_reason") == reason
               and node.api("/patroni")[1].get("pending_restart_reason") == reason,
               60, what=f"{kind} publishes the reason for max_connections",
               details=lambda: json.dumps([member_key(cluster, node.name),
                                           node.api("/patroni")[1]]))

    # a broken file: logged, the agent keeps running as it was
    node.config_path.write_text("postgresql: [unclosed\n")
    assert node.api("/reload", "POST") == (202, "reload scheduled")
    logged = "Exception when reloading local configuration" if kind == "patroni" else \
        "reload: config error: config file: "
    wait_until(lambda: logged in node.log_text(100000), 60, what=f"{kind} logs the bad file")
    if kind == "howdah":  # one line naming the file and the line, not a traceback
        assert "Traceback" not in node.log_text(100000)
        assert "is not valid YAML at line 2; keeping the running configuration" in \
            node.log_text(100000)
    assert node.api("/patroni")[1].get("state") == "running"
    assert node.sql("SHOW work_mem") == [("12MB",)]
