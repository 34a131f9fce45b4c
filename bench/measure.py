"""One benchmark scenario: a 3-node cluster of one agent kind at one timing.

Measured in this order on the same cluster:
  bootstrap  start of 3 agents -> a leader with 2 streaming replicas
  rss        VmRSS of each agent process once the cluster is stable
  rest       wrk on the leader's GET /primary
  failover   per trial: kill -9 of the leader's agent and postmaster -> a
             different node commits an INSERT (probe on every node, 50 ms)
  failover_freeze  the same with the leader node SIGSTOPped instead (a hung
             host: connections time out instead of being refused)
  rejoin     per trial: restart the killed node -> it streams from the new leader
"""
from __future__ import annotations

import statistics
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness import AgentNode, LocalCluster, wait_until
from harness.config import Timing

from wrkrun import run_wrk

Log = Callable[[str], None]
# Benchmark clusters live beside the bench, away from /tmp cleanups of other work.
CLUSTER_ROOT = Path(__file__).resolve().parent / ".clusters"


@dataclass(frozen=True)
class Scenario:
    agent: str
    label: str
    timing: Timing
    trials: int
    wrk_seconds: int
    faults: tuple[str, ...] = ("kill9",)

    @property
    def key(self) -> str:
        t = self.timing
        return f"{self.agent}-ttl{t.ttl}-lw{t.loop_wait}-rt{t.retry_timeout}"


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def run_scenario(sc: Scenario, log: Log) -> dict[str, Any]:
    """Run one scenario; never raises: failures land in result["errors"]."""
    t = sc.timing
    result: dict[str, Any] = {
        "agent": sc.agent, "label": sc.label, "key": sc.key,
        "timing": {"ttl": t.ttl, "loop_wait": t.loop_wait, "retry_timeout": t.retry_timeout},
        "trials_requested": sc.trials, "errors": [],
    }
    cluster = LocalCluster(3, kind=sc.agent, ttl=t.ttl, loop_wait=t.loop_wait,
                           retry_timeout=t.retry_timeout, scope="bench",
                           start_agents=False, root=CLUSTER_ROOT)
    try:
        with cluster:
            try:
                _measure(cluster, sc, result, log)
            except Exception:
                result["logs"] = cluster.dump_logs(200)  # before cleanup removes them
                raise
    except Exception as exc:  # noqa: BLE001 - record, keep benchmarking the rest
        result["errors"].append(f"{type(exc).__name__}: {exc}"[:600])
        result["traceback"] = traceback.format_exc()[-4000:]
        log(f"  ERROR {type(exc).__name__}: {str(exc)[:300]}")
    return result


def _measure(cluster: LocalCluster, sc: Scenario, result: dict[str, Any], log: Log) -> None:
    _bootstrap(cluster, result, log)
    _stable(cluster, sc.timing)
    result["rss_kb"] = {n.name: n.rss_kb() for n in cluster.nodes}
    result["helper_rss_kb"] = {n.name: n.helper_rss_kb() for n in cluster.nodes}
    result["pss_kb"] = {n.name: n.pss_kb() for n in cluster.nodes}
    log(f"  rss_kb {result['rss_kb']} helpers {result['helper_rss_kb']} "
        f"pss (agent + helpers) {result['pss_kb']}")
    leader = cluster.wait_leader(120)
    result["rest"] = run_wrk(f"{leader.api_url}/primary", sc.wrk_seconds)
    log(f"  rest {result['rest']}")
    _trials(cluster, sc, result, log)


def _bootstrap(cluster: LocalCluster, result: dict[str, Any], log: Log) -> None:
    started = time.monotonic()
    cluster.start_agents()
    cluster.wait_streaming(2, timeout=600)
    result["bootstrap_s"] = round(time.monotonic() - started, 3)
    log(f"  bootstrap {result['bootstrap_s']} s")


def _stable(cluster: LocalCluster, t: Timing) -> None:
    """Leader + 2 streaming replicas, replicas healthy, then one more loop."""
    leader = cluster.wait_leader(300)
    cluster.wait_streaming(2, timeout=600)
    for node in cluster.nodes:
        if node is not leader:
            wait_until(_healthy_replica(node), 300, what=f"{node.name} answers /replica 200")
    time.sleep(max(2.0, float(t.loop_wait)))


def _healthy_replica(node: AgentNode) -> Callable[[], bool]:
    return lambda: node.api("/replica")[0] == 200


FAULTS = ("kill9", "freeze")


def _trials(cluster: LocalCluster, sc: Scenario, result: dict[str, Any], log: Log) -> None:
    """sc.trials trials of each fault in sc.faults, alternating kinds."""
    runs: dict[str, list[dict[str, Any]]] = {f: [] for f in sc.faults}
    rejoins: list[dict[str, Any]] = []
    for fault in sc.faults:
        result[_key(fault)] = {"trials": runs[fault]}
    result["rejoin"] = {"trials": rejoins}
    try:
        for i in range(sc.trials):
            for fault in sc.faults:
                _one_trial(cluster, sc, fault, i + 1, runs[fault], rejoins, log)
    finally:
        for fault in sc.faults:
            result[_key(fault)]["median_s"] = _median(
                [f["seconds"] for f in runs[fault] if f.get("seconds") is not None])
        result["rejoin"]["median_s"] = _median(
            [r["seconds"] for r in rejoins if r["after"] == "kill9"])


def _key(fault: str) -> str:
    return "failover" if fault == "kill9" else f"failover_{fault}"


def _one_trial(cluster: LocalCluster, sc: Scenario, fault: str, i: int,
               failovers: list[dict[str, Any]], rejoins: list[dict[str, Any]],
               log: Log) -> None:
    """kill9: SIGKILL the leader's agent and postmaster (connections refused).
    freeze: SIGSTOP all its processes (connections hang, as when a host stops
    answering); once another node took writes, the frozen node is killed.
    Then the old leader is restarted and must stream from the new one."""
    budget = sc.timing.ttl * 4 + 240  # generous: assert behaviour, not durations
    _stable(cluster, sc.timing)
    old = cluster.wait_leader(120)
    with cluster.writer_probe() as probe:
        if probe.wait_write(time.monotonic(), timeout=60) is None:
            raise RuntimeError(f"writer probe cannot write on leader {old.name}")
        time.sleep(0.5)
        faulted_at = time.monotonic()
        if fault == "kill9":
            old.kill9()
        else:
            old.freeze_node()
        write = probe.wait_write(faulted_at, exclude=[old.name], timeout=budget)
        last_old = max((w.at for w in probe.snapshot() if w.node == old.name),
                       default=faulted_at)
        old.kill9()  # a frozen node is finished off; the probe thread is released
    if write is None:
        failovers.append({"killed": old.name, "seconds": None, "error": "timeout"})
        raise RuntimeError(f"{fault} trial {i}: no failover within {budget}s")
    seconds = round(write.at - faulted_at, 3)
    failovers.append({"killed": old.name, "new_leader": write.node, "seconds": seconds,
                      "write_gap_s": round(write.at - last_old, 3)})
    log(f"  {fault} trial {i}: failover {old.name} -> {write.node} in {seconds} s")
    new = cluster.wait_leader(120, exclude=[old.name])
    restarted = time.monotonic()
    old.start()
    wait_until(lambda: old.name in cluster.streaming(new), budget,
               what=f"{old.name} streams from {new.name}")
    rejoin = round(time.monotonic() - restarted, 3)
    rejoins.append({"node": old.name, "leader": new.name, "seconds": rejoin, "after": fault})
    log(f"  {fault} trial {i}: rejoin of {old.name} in {rejoin} s")
