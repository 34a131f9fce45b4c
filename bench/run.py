"""Side-by-side benchmark of Howdah and Patroni 4.1.5 on this machine, one run.

    /work/main/.venv/bin/python bench/run.py [--agents howdah,patroni] [--trials N] [--quick]

Both agents get the same generated YAML (tests/harness) at ttl 30 / loop_wait 10 /
retry_timeout 10; Howdah alone also runs at 5 / 1 / 2 (Patroni refuses ttl < 20).
Results: bench/results/<UTC time>.json, and a markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from harness.config import KINDS, PATRONI_VENV, Timing  # noqa: E402

from measure import FAULTS, Scenario, run_scenario  # noqa: E402
from report import environment, markdown_table  # noqa: E402

SLOW = Timing(ttl=30, loop_wait=10, retry_timeout=10)
FAST = Timing(ttl=5, loop_wait=1, retry_timeout=2)


def log(msg: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {msg}", flush=True)


def scenarios(agents: list[str], trials: int, wrk_seconds: int,
              faults: tuple[str, ...], fast: bool = True) -> list[Scenario]:
    out = [Scenario(a, "ttl30", SLOW, trials, wrk_seconds, faults) for a in agents]
    if fast and "howdah" in agents:
        out.append(Scenario("howdah", "ttl5", FAST, trials, wrk_seconds, faults))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", default="howdah,patroni",
                   help="comma-separated agent kinds (default: howdah,patroni)")
    p.add_argument("--trials", type=int, default=None,
                   help="failover/rejoin trials per scenario (default 5; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="1 trial and a 3 s wrk run: a smoke test of the bench itself")
    p.add_argument("--wrk-seconds", type=int, default=None, help="wrk duration (default 10)")
    p.add_argument("--faults", default="kill9,freeze",
                   help="leader faults to time: kill9 (process death: connections "
                        "refused), freeze (SIGSTOP: connections hang); default both")
    p.add_argument("--fast", action=argparse.BooleanOptionalAction, default=True,
                   help="also run Howdah at ttl 5/loop_wait 1/retry_timeout 2 (default: yes)")
    p.add_argument("--report", type=Path, metavar="JSON",
                   help="only print the markdown table of an earlier results file")
    p.add_argument("--out", type=Path, default=BENCH / "results",
                   help="directory for the JSON results (default bench/results)")
    args = p.parse_args(argv)
    args.agent_list = [a.strip() for a in args.agents.split(",") if a.strip()]
    for agent in args.agent_list:
        if agent not in KINDS:
            p.error(f"unknown agent {agent!r}; choose from {', '.join(KINDS)}")
    args.fault_list = tuple(f.strip() for f in args.faults.split(",") if f.strip())
    for fault in args.fault_list:
        if fault not in FAULTS:
            p.error(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
    if args.trials is None:
        args.trials = 1 if args.quick else 5
    if args.wrk_seconds is None:
        args.wrk_seconds = 3 if args.quick else 10
    return args


def _on_sigterm(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds the cluster context: nothing left running


def ensure_patroni() -> None:
    if not (PATRONI_VENV / "bin" / "patroni").exists():
        log("creating the Patroni venv (bench/setup.sh)")
        subprocess.run([str(BENCH / "setup.sh")], check=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        earlier = json.loads(args.report.read_text())
        print(markdown_table(earlier["results"], earlier["environment"]))
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    if "patroni" in args.agent_list:
        ensure_patroni()
    env = environment()
    started = datetime.now(timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    out_path = args.out / f"{stamp}.json"
    doc: dict[str, Any] = {"started": started.isoformat(), "args": {
        "agents": args.agent_list, "trials": args.trials, "quick": args.quick,
        "faults": list(args.fault_list),
        "wrk_seconds": args.wrk_seconds}, "environment": env, "results": []}
    for sc in scenarios(args.agent_list, args.trials, args.wrk_seconds, args.fault_list,
                        args.fast):
        log(f"scenario {sc.key}: {sc.trials} trial(s)")
        t0 = time.monotonic()
        res = run_scenario(sc, log)
        res["wall_s"] = round(time.monotonic() - t0, 1)
        logs = res.pop("logs", None)
        if logs:
            log_path = args.out / f"{stamp}-{sc.key}.log"
            log_path.write_text(logs + "\n\n" + res.get("traceback", ""))
            res["log_file"] = log_path.name
        doc["results"].append(res)
        out_path.write_text(json.dumps(doc, indent=2) + "\n")  # partial results survive
    doc["finished"] = datetime.now(timezone.utc).isoformat()
    doc["markdown"] = markdown_table(doc["results"], env)
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    print()
    print(doc["markdown"])
    print(f"\nresults: {out_path}")
    return 1 if any(r["errors"] for r in doc["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
