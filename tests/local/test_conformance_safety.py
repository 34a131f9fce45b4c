"""Patroni's safety settings side by side: Patroni 4.1.5 and Howdah from the same YAML.

* check_timeline: a replica whose timeline is behind the one /history says the
  cluster reached does not take a free leader lock; with the setting off it does.
* primary_stop_timeout: in synchronous mode a stop of the primary that hangs (its
  checkpointer is stopped, so the shutdown checkpoint never ends) is aborted after
  the timeout: the postmaster and its children are gone; in asynchronous mode the
  setting does not apply and the stop is still waiting long after the timeout.
* remove_data_directory_on_diverged_timelines: a former primary that wrote past
  the new leader's switch point (and may not use pg_rewind) is cloned again when
  the setting is on (its extra row gone, the new leader's rows streamed); with the
  setting off its data directory is kept as it was; also when it already runs as a
  replica (of a timeline it cannot follow) when its agent starts.  Kept, with
  check_timeline on, it is no switchover candidate: POST /switchover to it fails.
  With use_pg_rewind on (and the setting off) that running replica is stopped and
  rewound instead: the leader's rows replace its extra one, and it streams.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from typing import Any, Callable

import pytest

from harness import LocalCluster, wait_until
from harness import procs
from harness.config import PG_BIN

pytestmark = [pytest.mark.local, pytest.mark.timeout(900)]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}
KINDS = [pytest.param("patroni", marks=pytest.mark.patroni), "howdah"]
RUN_AS = "postgres"


def _start(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "patroni":
        request.getfixturevalue("patroni_venv")


def _rows(node: Any, table: str = "safety") -> set[str]:
    try:
        return {r[0] for r in node.sql(f"SELECT v FROM {table}")}
    except Exception:  # noqa: BLE001
        return set()


def _agent_exit(node: Any, timeout: float = 120) -> None:
    """Wait for an agent that was sent SIGTERM to exit."""
    assert node.proc is not None
    node.proc.wait(timeout=timeout)
    procs.unmanage(node.proc.pid)


# ---- check_timeline ----------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_check_timeline(kind: str, request: pytest.FixtureRequest,
                        local_cluster: Callable[..., LocalCluster]) -> None:
    _start(kind, request)
    cluster = local_cluster(2, kind=kind, **FAST,
                            extra={"bootstrap": {"dcs": {"check_timeline": True}}})
    leader = cluster.wait_leader(180)
    cluster.wait_streaming(1, 300)
    replica = next(n for n in cluster.nodes if n is not leader)
    leader.kill9()
    # the cluster went to timeline 2 while this replica was away (as /history says)
    cluster.dcs_client().write_history(
        [[1, 100663296, "no recovery target specified", "2026-12-03T10:00:00+00:00", "gone"]])
    wait_until(lambda: cluster.dcs_key("leader") is None, 120, what="the lock expires")
    time.sleep(FAST["ttl"])  # many cycles of the replica with a free lock
    assert cluster.dcs_key("leader") is None, f"{kind}: a replica behind the cluster's timeline led"
    assert replica.api("/primary")[0] != 200
    assert not replica.is_writable()

    code, _ = replica.api("/config", "PATCH", {"check_timeline": False})
    assert code == 200, kind
    wait_until(lambda: cluster.dcs_key("leader") == replica.name, 180,
               what="with check_timeline off the replica takes the lock", details=cluster.dump_logs)
    wait_until(replica.is_writable, 120, what="the new leader takes writes")


# ---- primary_stop_timeout ----------------------------------------------------
def _checkpointer(node: Any) -> int:
    rows = node.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
    return int(rows[0][0])


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_primary_stop_timeout(kind: str, mode: str, request: pytest.FixtureRequest,
                              local_cluster: Callable[..., LocalCluster]) -> None:
    _start(kind, request)
    dcs = {"primary_stop_timeout": 5, "synchronous_mode": mode == "sync"}
    cluster = local_cluster(2, kind=kind, **FAST, extra={"bootstrap": {"dcs": dcs}})
    leader = cluster.wait_leader(180)
    cluster.wait_streaming(1, 300)
    if mode == "sync":
        wait_until(lambda: (leader.sql("SELECT count(*) FROM pg_stat_replication WHERE "
                                       "sync_state IN ('sync', 'quorum')")[0][0] == 1), 120,
                   what="a synchronous standby")
    postmaster, ckpt = leader.postmaster_pid(), _checkpointer(leader)
    assert postmaster is not None and leader.agent_pid is not None
    os.kill(ckpt, signal.SIGSTOP)  # the shutdown checkpoint can never finish
    try:
        procs.signal_pid(leader.agent_pid, signal.SIGTERM)
        if mode == "sync":
            wait_until(lambda: not procs.alive(postmaster), 30,
                       what=f"{kind}: primary_stop_timeout aborts the hanging stop",
                       details=cluster.dump_logs)
            assert procs.wait_gone([ckpt], 15), f"{kind}: the stopped checkpointer survived"
        else:
            time.sleep(20)  # 4x primary_stop_timeout: not applied in asynchronous mode
            assert procs.alive(postmaster), f"{kind}: primary_stop_timeout applied in async mode"
    finally:
        if procs.alive(ckpt):
            os.kill(ckpt, signal.SIGCONT)
    _agent_exit(leader)
    assert procs.wait_gone([postmaster], 60)


# ---- remove_data_directory_on_diverged_timelines -----------------------------
def _pg_ctl(node: Any, *args: str) -> None:
    user = {"user": RUN_AS, "group": RUN_AS, "extra_groups": []} if os.geteuid() == 0 else {}
    res = subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(node.data_dir), "-w", "-t", "120",
                          *args], capture_output=True, text=True, timeout=180, cwd=node.workdir,
                         **user)  # type: ignore[call-overload]
    assert res.returncode == 0, res.stdout + res.stderr


def _read(cluster: LocalCluster, node: Any) -> Callable[[], str]:
    """What a failed wait read: the rows on `node`, then every log's tail."""
    return lambda: f"rows on {node.name}: {sorted(_rows(node))}\n" + cluster.dump_logs()


# "running": the diverged former primary is already running as a replica when its agent
# starts (as after a start while the leader could not be asked): the timeline it replays
# is behind the leader's, and the agent checks the running replica too.
# "rewind-running": the same with use_pg_rewind on and the remove setting off: stopped,
# rewound against the leader and started as its replica.
@pytest.mark.parametrize("mode", ["remove", "keep", "remove-running", "rewind-running"])
@pytest.mark.parametrize("kind", KINDS)
def test_diverged_timelines(kind: str, mode: str, request: pytest.FixtureRequest,
                            local_cluster: Callable[..., LocalCluster]) -> None:
    _start(kind, request)
    rewind = mode == "rewind-running"
    remove = mode in ("remove", "remove-running")
    local = {"postgresql": {"use_pg_rewind": rewind,
                            "remove_data_directory_on_diverged_timelines": remove}}
    dcs = {"postgresql": {"use_pg_rewind": rewind}, "check_timeline": True}
    extra = {"bootstrap": {"dcs": dcs}, **local}
    cluster = local_cluster(2, kind=kind, **FAST, extra=extra)
    old = cluster.wait_leader(180)
    cluster.wait_streaming(1, 300)
    new = next(n for n in cluster.nodes if n is not old)
    old.sql("CREATE TABLE safety (v text)")
    old.sql("INSERT INTO safety VALUES ('before')")
    wait_until(lambda: _rows(new) == {"before"}, 120, what="the replica has the first row")

    # the old leader stops cleanly: the replica takes over (timeline 2)
    assert old.stop_sigterm(120) == 0
    wait_until(lambda: cluster.dcs_key("leader") == new.name, 180, what="the replica leads",
               details=cluster.dump_logs)
    wait_until(new.is_writable, 120, what="the new leader takes writes")
    new.sql("INSERT INTO safety VALUES ('after')")
    # the old primary runs alone once more and writes past the switch point
    _pg_ctl(old, "start", "-l", str(old.workdir / "standalone.log"))
    old.sql("INSERT INTO safety VALUES ('diverged')")
    _pg_ctl(old, "stop", "-m", "fast")
    if mode.endswith("-running"):
        signal_file = old.data_dir / "standby.signal"
        signal_file.touch()
        if os.geteuid() == 0:
            shutil.chown(signal_file, RUN_AS, RUN_AS)
        _pg_ctl(old, "start", "-l", str(old.workdir / "standby.log"))
        wait_until(lambda: _rows(old) == {"before", "diverged"}, 60,
                   what="the diverged member runs as a replica")

    old.start()
    if remove or rewind:
        how = "rewound against" if rewind else "cloned again from"
        wait_until(lambda: _rows(old) == {"before", "after"}, 240,
                   what=f"{kind}: the diverged member is {how} {new.name}",
                   details=_read(cluster, old))
        new.sql("INSERT INTO safety VALUES ('later')")
        wait_until(lambda: "later" in _rows(old), 120, what="and streams from the new leader",
                   details=_read(cluster, old))
    else:
        wait_until(lambda: old.postmaster_pid() is not None and bool(_rows(old)), 180,
                   what="the diverged member starts", details=_read(cluster, old))
        time.sleep(15)
        assert _rows(old) == {"before", "diverged"}, \
            f"{kind}: the data directory was replaced\n{_read(cluster, old)()}"
        # check_timeline: a switchover to the member left on timeline 1 fails (promoting
        # it would drop the leader's writes since the switch); the leader leads on
        code, body = new.api("/switchover", "POST", {"leader": new.name,
                                                     "candidate": old.name}, timeout=60)
        assert (code, body) == (503, "Switchover failed"), (kind, code, body)
        time.sleep(2 * FAST["loop_wait"])
        assert cluster.dcs_key("leader") == new.name, kind
        assert new.is_writable() and _rows(new) == {"before", "after"}, kind
