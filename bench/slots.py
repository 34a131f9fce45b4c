"""How far replicas' slot copies trail the leader, beside Patroni 4.1.5 (issue 11's target:
"slot positions on replicas trail the primary's by at most one loop_wait").

    /work/main/.venv/bin/python bench/slots.py [--agents howdah,patroni] [--seconds 120]

Each agent gets one 2-node cluster at the default timing (ttl 30 / loop_wait 10 /
retry_timeout 10) with a permanent logical slot (perm_log, test_decoding), a permanent
physical one and `failsafe_mode` on. Two phases, each with an INSERT on the leader every
0.1 s and a consumer confirming perm_log (pg_replication_slot_advance) every 0.5 s, both
nodes sampled every 0.25 s (tests/harness/slots.py, SlotTrail):
- steady: `--seconds` of writes with the DCS up (positions from /status);
- outage: etcd SIGSTOPped for 3 x retry_timeout (30 s, failsafe mode: positions from the
  leader's POST /failsafe body).
Trail of a sample = how long ago the leader's slot was last at or before the position the
replica's copy has now (0 while equal), for perm_log and for the replica's physical slot
for the leader (against the leader's current WAL position). After the run: the inactive
slots nobody will use (stale_slots), which must be none.
Results: bench/results/slots-<time>.json and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from failsafe import STALL, TIMING, save  # noqa: E402  the same timing and stall
from harness import LocalCluster, wait_until  # noqa: E402
from harness.slots import SlotTrail, stale_slots  # noqa: E402

SLOTS = {"perm_phys": {"type": "physical"},
         "perm_log": {"type": "logical", "database": "postgres", "plugin": "test_decoding"}}
EXTRA = {"bootstrap": {"dcs": {"slots": SLOTS, "failsafe_mode": True,
                               "postgresql": {"parameters": {"wal_level": "logical"}}}}}


def names(node: Any) -> set[str]:
    return {r[0] for r in node.sql("SELECT slot_name FROM pg_replication_slots")}


def run(agent: str, seconds: float) -> dict[str, Any]:
    root = BENCH / ".clusters"
    root.mkdir(exist_ok=True)
    out: dict[str, Any] = {"agent": agent}
    skip = 2 * TIMING["loop_wait"]  # a copy made or restarted at the start is not a trail
    try:
        with LocalCluster(2, kind=agent, extra=EXTRA, scope="slots", root=root,
                          **TIMING) as cluster:
            leader = cluster.wait_leader(300)
            cluster.wait_streaming(1, 300)
            replica = next(n for n in cluster.nodes if n is not leader)
            wait_until(lambda: {leader.name, "perm_log", "perm_phys"} <= names(replica), 600,
                       interval=1, what="the replica has its slot copies")
            wait_until(lambda: len(json.loads(cluster.dcs_key("failsafe") or "{}")) == 2, 120,
                       what="/failsafe lists both members")
            with SlotTrail(leader, replica) as steady:
                time.sleep(seconds)
            out["steady"] = steady.summary(skip) | {"errors": steady.errors}
            assert cluster.etcd is not None
            with SlotTrail(leader, replica, table="slot_trail_outage") as outage:
                cluster.etcd.freeze()
                try:
                    time.sleep(STALL)
                finally:
                    cluster.etcd.thaw()
            # the outage's first loop_wait: the leader finds etcd gone (retry_timeout)
            # before its first round; that delay is the DCS's, not the slots'
            out["outage"] = outage.summary(TIMING["retry_timeout"]) | {
                "errors": outage.errors}
            wait_until(lambda: cluster.leader() is leader, 180, what="the leader is back")
            time.sleep(2 * TIMING["loop_wait"])
            out["stale_slots"] = stale_slots(cluster)
    except Exception as exc:  # noqa: BLE001 - record it, the other agent still runs
        out["error"] = f"{type(exc).__name__}: {exc}"
    print(f"  {agent}: {out}", flush=True)
    return out


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| agent | phase | slot | p50 (s) | p95 (s) | max (s) | samples |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("error"):
            rows.append(f"| {r['agent']} | error: {r['error']} | | | | | |")
            continue
        for phase in ("steady", "outage"):
            for slot, f in r[phase].items():
                if isinstance(f, dict):
                    kind = "logical perm_log" if slot == "perm_log" else "physical (leader's)"
                    rows.append(f"| {r['agent']} | {phase} | {kind} | {f['p50']} | {f['p95']} "
                                f"| {f['max']} | {f['samples']} |")
        rows.append(f"| {r['agent']} | after | stale slots | {len(r['stale_slots'])} | | | |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", default="howdah,patroni")
    ap.add_argument("--seconds", type=float, default=120)
    args = ap.parse_args()
    started = datetime.now(timezone.utc)
    results = [run(agent, args.seconds) for agent in args.agents.split(",")]
    return save("slots", started, results, table(results))


if __name__ == "__main__":
    sys.exit(main())
