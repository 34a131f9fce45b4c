"""The full fault campaign (issue 10): Howdah beside Patroni 4.1.5 on the same
seed, in one run, in asynchronous, synchronous, strict and quorum modes.

    /work/main/.venv/bin/python bench/campaign.py [--agents howdah,patroni]
        [--modes async,sync,strict,quorum] [--faults kill9_leader_agent,...] [--seed N]

Each run: 3 nodes on real PostgreSQL and etcd (tests/harness), each node's
processes in a cgroup of their own so the leader can be partitioned by iptables
REJECT or DROP rules (tests/harness/netcut.py; root), 3 writer clients recording every
acknowledged id, probes every ~100 ms of which nodes commit a write and which
answer /primary 200, the seeded faults one after another (each held for 2 ttl,
then healed and the cluster left to settle), and at the end every acknowledged
id looked up on the leader.  Both agents run at ttl 20 / loop_wait 2 /
retry_timeout 5 (Patroni refuses ttl < 20).  Results: bench/results/
campaign-<UTC time>.json and a markdown table on stdout (copy it into
bench/README.md).  The engine is tests/campaign/engine.py, which the CI tier
(tests/campaign) runs with fewer faults.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH.parent / "tests" / "campaign"))

from engine import FAULTS, MODES, Campaign, Result  # noqa: E402


def log(msg: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {msg}", flush=True)


def table(results: list[Result]) -> str:
    lines = ["| agent | mode | acknowledged | lost | split-brain rounds (commit / /primary) "
             "| two writable primaries (s) | longest stall without a writable primary |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        worst = max(r.longest_no_writer.items(), key=lambda kv: kv[1], default=("-", 0.0))
        lines.append(f"| {r.kind} | {r.mode} | {r.acked} | {len(r.lost)} | "
                     f"{r.split_commit_rounds} / {r.split_api_rounds} | "
                     f"{r.split_commit_seconds:.1f} | {worst[1]:.1f} s ({worst[0]}) |")
    return "\n".join(lines)


def stalls(results: list[Result]) -> str:
    """Per fault, the longest stall without a writable primary of each run."""
    cols = [f"{r.kind} {r.mode}" for r in results]
    lines = ["| fault | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    faults = list(dict.fromkeys(k for r in results for k in r.longest_no_writer))
    for f in faults:
        cells = [f"{r.longest_no_writer[f]:.1f}" if f in r.longest_no_writer else "-"
                 for r in results]
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", default="howdah,patroni")
    p.add_argument("--modes", default="async,sync,strict,quorum")
    p.add_argument("--faults", default=",".join(FAULTS))
    p.add_argument("--seed", type=int, default=20261203)
    p.add_argument("--ttl", type=int, default=20)
    p.add_argument("--loop-wait", type=int, default=2)
    p.add_argument("--retry-timeout", type=int, default=5)
    p.add_argument("--out", default=str(BENCH / "results"))
    a = p.parse_args()
    faults = [f for f in a.faults.split(",") if f]
    bad = [f for f in faults if f not in FAULTS] + \
        [m for m in a.modes.split(",") if m not in MODES]
    if bad:
        print(f"campaign: unknown fault or mode {bad}; faults: {', '.join(FAULTS)}; "
              f"modes: {', '.join(MODES)}", file=sys.stderr)
        return 2
    results: list[Result] = []
    errors: list[str] = []
    for mode in a.modes.split(","):
        for kind in a.agents.split(","):
            log(f"{kind} / {mode}: {len(faults)} faults, seed {a.seed}")
            try:
                r = Campaign(kind, mode, a.seed, faults, a.ttl, a.loop_wait, a.retry_timeout,
                             log=log).run()
            except Exception as exc:  # noqa: BLE001 - record it, run the others
                errors.append(f"{kind}/{mode}: {exc!r}"[:2000])
                log(f"{kind}/{mode} failed: {exc!r}"[:2000])
                continue
            log(r.summary())
            results.append(r)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    doc = {"seed": a.seed, "faults": faults,
           "timing": {"ttl": a.ttl, "loop_wait": a.loop_wait, "retry_timeout": a.retry_timeout},
           "results": [asdict(r) | {"lost": len(r.lost), "lost_ids": r.lost[:100]}
                       for r in results], "errors": errors}
    (out / f"campaign-{stamp}.json").write_text(json.dumps(doc, indent=1))
    print(table(results))
    print()
    print(stalls(results))
    for e in errors:
        print(f"error: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
