"""Write unavailability during a planned switchover: Howdah beside Patroni 4.1.5.

    /work/main/.venv/bin/python bench/switchover.py [--agents howdah,patroni] [--trials 5]

Each agent kind gets an idle 3-node cluster (tests/harness, ttl 30 / loop_wait 10 /
retry_timeout 10).  A writer commits one INSERT every 20 ms through whichever node
answers GET /primary with 200 (as HAProxy would route it): when a write fails it asks
every node's /primary again, every 20 ms, until one answers 200.  Each trial asks the
leader's REST API for a switchover (POST /switchover {leader, candidate}) and records
the largest gap between two consecutive committed writes around it.  The next trial
starts once the old leader streams again.  Results: bench/results/switchover-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from harness import AgentNode, LocalCluster  # noqa: E402
from harness.node import PROBE_DDL, PROBE_TABLE  # noqa: E402
from harness.probe import close_quietly  # noqa: E402
from harness.web import request  # noqa: E402

INTERVAL = 0.02


def log(msg: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {msg}", flush=True)


class RoutedWriter:
    """One writer thread, routed by /primary; records the time of every commit."""

    def __init__(self, nodes: list[AgentNode]) -> None:
        self.nodes = nodes
        self.commits: list[float] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(len(nodes))
        self._thread = threading.Thread(target=self._run, name="routed-writer", daemon=True)

    def __enter__(self) -> "RoutedWriter":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)
        self._pool.shutdown(wait=False)

    def primary(self) -> AgentNode | None:
        codes = self._pool.map(lambda n: request(n.api_url + "/primary", timeout=0.5)[0], self.nodes)
        for node, code in zip(self.nodes, codes):
            if code == 200:
                return node
        return None

    def _run(self) -> None:
        conn: Any = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    node = self.primary()
                    if node is None:
                        raise ConnectionError("no node answers /primary")
                    conn = node.connect(connect_timeout=1)
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {PROBE_TABLE} (writer) VALUES ('bench')")
                self.commits.append(time.monotonic())
            except Exception:  # noqa: BLE001 - any failure: route again
                close_quietly(conn)
                conn = None
            self._stop.wait(max(0.0, INTERVAL - (time.monotonic() - started)))
        close_quietly(conn)

    def max_gap(self, start: float, end: float) -> float:
        times = [t for t in self.commits if start <= t <= end]
        return max((b - a for a, b in zip(times, times[1:])), default=float("nan"))


def settle(cluster: LocalCluster, leader: AgentNode) -> None:
    """The leader answers /primary and both others stream and answer /replica."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        others = [n for n in cluster.nodes if n is not leader]
        if (cluster.leader() is leader and len(cluster.streaming(leader)) == 2
                and all(n.api("/replica")[0] == 200 for n in others)):
            return
        time.sleep(0.5)
    raise TimeoutError("cluster did not settle\n" + cluster.dump_logs(60))


def trial(cluster: LocalCluster, writer: RoutedWriter) -> dict[str, Any]:
    old = cluster.wait_leader(120)
    target = sorted(n.name for n in cluster.nodes if n is not old)[0]
    time.sleep(2.0)  # a steady stream of writes before the switchover
    asked = time.monotonic()
    code, body = request(old.api_url + "/switchover", "POST",
                         {"leader": old.name, "candidate": target}, timeout=60, auth=old.api_auth)
    answered = time.monotonic()
    new = cluster.wait_leader(120, exclude=[old.name])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(t > answered for t in writer.commits):
        time.sleep(0.05)
    time.sleep(1.0)
    gap = writer.max_gap(asked - 1.0, time.monotonic())
    settle(cluster, new)
    return {"from": old.name, "to": new.name, "asked_for": target, "api_code": code,
            "api_message": body, "api_seconds": round(answered - asked, 3), "max_gap": round(gap, 3)}


def run_agent(kind: str, trials: int) -> dict[str, Any]:
    result: dict[str, Any] = {"agent": kind, "trials": [], "errors": []}
    with LocalCluster(3, kind=kind, ttl=30, loop_wait=10, retry_timeout=10, scope="swbench") as c:
        leader = c.wait_leader(240)
        leader.sql(PROBE_DDL)
        settle(c, leader)
        with RoutedWriter(c.nodes) as writer:
            for i in range(trials):
                try:
                    t = trial(c, writer)
                except Exception as exc:  # noqa: BLE001 - record and stop this agent
                    result["errors"].append(f"{type(exc).__name__}: {str(exc)[:500]}")
                    break
                log(f"{kind} trial {i + 1}: {t['from']} -> {t['to']} max write gap {t['max_gap']:.3f}s "
                    f"(API {t['api_code']} after {t['api_seconds']:.2f}s)")
                result["trials"].append(t)
    gaps = [t["max_gap"] for t in result["trials"]]
    if gaps:
        result.update(median=round(statistics.median(gaps), 3), max=max(gaps), min=min(gaps))
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", default="howdah,patroni")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--out", default=str(BENCH / "results"))
    args = p.parse_args()
    results = []
    for kind in args.agents.split(","):
        log(f"{kind}: starting a 3-node cluster")
        results.append(run_agent(kind.strip(), args.trials))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) / f"switchover-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print("\n| agent | trials | median max gap (s) | worst (s) | best (s) |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['agent']} | {len(r['trials'])} | {r.get('median')} | {r.get('max')} | {r.get('min')} |")
    log(f"written {out}")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
