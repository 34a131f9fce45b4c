"""An etcd stall of 3 x retry_timeout beside Patroni 4.1.5, with and without failsafe_mode.

    /work/main/.venv/bin/python bench/failsafe.py [--agents howdah,patroni] [--stalls 2]
                                                  [--modes on,off]

Each (agent, mode) gets one 3-node cluster at the default timing (ttl 30, loop_wait 10,
retry_timeout 10; `failsafe_mode` true or false in bootstrap.dcs) and, once it is settled,
`--stalls` times: etcd is SIGSTOPped for 3 x retry_timeout (30 s, as long as ttl), then
SIGCONTed, and the cluster is left to settle again. Meanwhile every node's GET /patroni is
polled every 0.5 s and a writer commits one INSERT on the leader every 0.2 s.

Counted per stall, from the start of the stall until the cluster is settled again:
- demotions: the stall's leader reported as anything but a running primary in GET /patroni
  (or not answering) for at least one poll, counted once per stall;
- failovers: another node reported as a running primary, or the leader key held by another;
- failed writes, and the longest run of failed writes (seconds);
- the leader's timeline after the stall against before.
Results: bench/results/failsafe-<time>.json and a markdown table.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from harness import AgentNode, LocalCluster  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

TIMING = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}
STALL = 3 * TIMING["retry_timeout"]


wait = functools.partial(wait_for, timeout=300, every=0.5)  # a bench cluster settles slowly


def settled(cluster: LocalCluster) -> AgentNode:
    wait("two replicas", lambda: sum(n.api("/replica")[0] == 200 for n in cluster.nodes) == 2)
    return wait("one leader", lambda: cluster.leader() if len(cluster.primaries()) == 1 else None)


class Watch:
    """Polls every node's GET /patroni and writes on the leader until stopped."""

    def __init__(self, cluster: LocalCluster, leader: AgentNode) -> None:
        self.cluster, self.leader = cluster, leader
        self.stop = threading.Event()
        self.leader_down = 0  # polls where the leader was not a running primary
        self.others_primary: set[str] = set()
        self.writes = 0
        self.failed = 0
        self.longest_gap = 0.0
        self.threads = [threading.Thread(target=self._poll, daemon=True),
                        threading.Thread(target=self._write, daemon=True)]

    def __enter__(self) -> "Watch":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _poll(self) -> None:
        while not self.stop.wait(0.5):
            for node in self.cluster.nodes:
                code, body = node.api("/patroni", timeout=2)
                primary = isinstance(body, dict) and body.get("role") == "primary" \
                    and body.get("state") == "running"
                if node is self.leader and not primary:
                    self.leader_down += 1
                elif node is not self.leader and primary:
                    self.others_primary.add(node.name)

    def _write(self) -> None:
        gap_from: float | None = None
        while not self.stop.wait(0.2):
            ok = self.leader.is_writable()
            now = time.monotonic()
            self.writes += 1
            if ok:
                if gap_from is not None:
                    self.longest_gap = max(self.longest_gap, now - gap_from)
                gap_from = None
            else:
                self.failed += 1
                gap_from = gap_from if gap_from is not None else now
        if gap_from is not None:
            self.longest_gap = max(self.longest_gap, time.monotonic() - gap_from)


def timeline(node: AgentNode) -> int | None:
    try:
        return int(node.sql("SELECT timeline_id FROM pg_control_checkpoint()")[0][0])
    except Exception:  # noqa: BLE001
        return None


def one_stall(cluster: LocalCluster) -> dict[str, Any]:
    leader = settled(cluster)
    before = timeline(leader)
    assert cluster.etcd is not None
    with Watch(cluster, leader) as watch:
        cluster.etcd.freeze()
        try:
            time.sleep(STALL)
        finally:
            cluster.etcd.thaw()
        after_leader = settled(cluster)
        time.sleep(TIMING["loop_wait"])  # one more cycle: a late demotion would show
    holder = cluster.dcs_key("leader")
    failovers = int(bool(watch.others_primary) or holder != leader.name)
    return {"leader": leader.name, "leader_after": after_leader.name, "key_after": holder,
            "demotions": int(watch.leader_down > 0), "polls_leader_not_primary": watch.leader_down,
            "failovers": failovers, "other_primaries": sorted(watch.others_primary),
            "writes": watch.writes, "failed_writes": watch.failed,
            "longest_write_gap_s": round(watch.longest_gap, 1),
            "timeline_before": before, "timeline_after": timeline(after_leader)}


def run(agent: str, failsafe: bool, stalls: int) -> dict[str, Any]:
    extra = {"bootstrap": {"dcs": {"failsafe_mode": failsafe}}}
    root = BENCH / ".clusters"
    root.mkdir(exist_ok=True)
    out: dict[str, Any] = {"agent": agent, "failsafe_mode": failsafe, "stalls": []}
    try:
        with LocalCluster(3, kind=agent, extra=extra, scope="failsafe", root=root,
                          **TIMING) as cluster:
            settled(cluster)
            if failsafe:
                wait("/failsafe lists 3 members",
                     lambda: len(json.loads(cluster.dcs_key("failsafe") or "{}")) == 3)
            for i in range(stalls):
                result = one_stall(cluster)
                print(f"  {agent} failsafe={failsafe} stall {i + 1}: {result}", flush=True)
                out["stalls"].append(result)
    except Exception as exc:  # noqa: BLE001 - record it, the other scenarios still run
        out["error"] = f"{type(exc).__name__}: {exc}"
        print(f"  {agent} failsafe={failsafe}: {out['error']}", flush=True)
    return out


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| agent | failsafe_mode | stalls | demotions | failovers | failed writes / tried | "
            "longest write gap (s) | timeline changed |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["stalls"]
        changed = sum(1 for x in s if x["timeline_before"] != x["timeline_after"])
        rows.append(f"| {r['agent']} | {'on' if r['failsafe_mode'] else 'off'} | {len(s)} | "
                    f"{sum(x['demotions'] for x in s)} | {sum(x['failovers'] for x in s)} | "
                    f"{sum(x['failed_writes'] for x in s)} / {sum(x['writes'] for x in s)} | "
                    f"{max([x['longest_write_gap_s'] for x in s] or [0])} | {changed} |"
                    + (f" error: {r['error']}" if r.get("error") else ""))
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", default="howdah,patroni")
    ap.add_argument("--modes", default="on,off")
    ap.add_argument("--stalls", type=int, default=2)
    args = ap.parse_args()
    started = datetime.now(timezone.utc)
    results = []
    for mode in args.modes.split(","):
        for agent in args.agents.split(","):
            results.append(run(agent, mode == "on", args.stalls))
    return save("failsafe", started, results, table(results))


def save(name: str, started: datetime, results: list[dict[str, Any]], markdown: str) -> int:
    """bench/results/<name>-<time>.json (timing, stall, load, results), the table on
    stdout; exit status 1 when a run recorded an error (bench/slots.py too)."""
    doc = {"started": started.isoformat(), "timing": TIMING, "stall_s": STALL,
           "load": open("/proc/loadavg").read().split()[:3], "results": results}
    out = BENCH / "results" / f"{name}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(markdown)
    print(f"written to {out}")
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
