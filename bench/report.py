"""Environment facts for the results file and the markdown results table."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any, Callable

from harness.config import HOWDAH_VENV, PATRONI_VENV, PG_BIN, REPO


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def environment() -> dict[str, Any]:
    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "mem_total_kb": mem_kb,
        "loadavg_at_start": os.getloadavg(),
        "postgres": _first_line([str(PG_BIN / "postgres"), "--version"]),
        "etcd": _first_line(["etcd", "--version"]),
        "wrk": _first_line(["wrk", "--version"]),
        "patroni": _first_line([str(PATRONI_VENV / "bin" / "patroni"), "--version"]),
        "howdah_commit": _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "howdah_dirty": bool(_first_line(["git", "-C", str(REPO), "status", "--porcelain",
                                          "--untracked-files=no", "image"])),
        "howdah_python": str(HOWDAH_VENV / "bin" / "python"),
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _trials(res: dict[str, Any], key: str, after: str | None = None) -> str:
    trials = [t for t in res.get(key, {}).get("trials", [])
              if after is None or t.get("after") == after]
    if not trials:
        return "n/a"
    return ", ".join(_fmt(t.get("seconds")) for t in trials)


def _median_after(res: dict[str, Any], after: str) -> float | None:
    values = [t["seconds"] for t in res.get("rejoin", {}).get("trials", [])
              if t.get("after") == after and t.get("seconds") is not None]
    return statistics.median(values) if values else None


def _rss(res: dict[str, Any]) -> str:
    values = [v for v in (res.get("rss_kb") or {}).values() if v]
    if not values:
        return "n/a"
    return f"{min(values) / 1024:.1f}-{max(values) / 1024:.1f}"


def _rss_total(res: dict[str, Any]) -> str:
    agents, helpers = res.get("rss_kb") or {}, res.get("helper_rss_kb")
    if helpers is None:
        return "n/a"
    values = [agents[n] + helpers.get(n, 0) for n in agents if agents[n]]
    if not values:
        return "n/a"
    return f"{min(values) / 1024:.1f}-{max(values) / 1024:.1f}"


def _pss(res: dict[str, Any]) -> str:
    values = [v for v in (res.get("pss_kb") or {}).values() if v]
    if not values:
        return "n/a"
    return f"{min(values) / 1024:.1f}-{max(values) / 1024:.1f}"


ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("bootstrap: 3 agents -> leader + 2 streaming (s)", lambda r: _fmt(r.get("bootstrap_s"))),
    ("failover after kill -9 of the leader, median (s)",
     lambda r: _fmt(r.get("failover", {}).get("median_s"))),
    ("failover, each trial (s)", lambda r: _trials(r, "failover")),
    ("failover after SIGSTOP of the leader node, median (s)",
     lambda r: _fmt(r.get("failover_freeze", {}).get("median_s"))),
    ("failover after SIGSTOP, each trial (s)", lambda r: _trials(r, "failover_freeze")),
    ("rejoin after kill -9, median (s)",
     lambda r: _fmt(r.get("rejoin", {}).get("median_s"))),
    ("rejoin after kill -9, each trial (s)", lambda r: _trials(r, "rejoin", "kill9")),
    ("rejoin after SIGSTOP (then kill), median (s)",
     lambda r: _fmt(_median_after(r, "freeze"))),
    ("GET /primary on leader, wrk -t2 -c16 (req/s)",
     lambda r: _fmt(r.get("rest", {}).get("requests_per_s"), 0)),
    ("GET /primary p99 latency (ms)", lambda r: _fmt(r.get("rest", {}).get("p99_ms"), 2)),
    ("agent RSS, 3 agents (MiB, min-max)", _rss),
    ("agent + helper processes (Howdah's fence) RSS per node (MiB, min-max)", _rss_total),
    ("agent + helpers PSS per node, shared pages split (MiB, min-max)", _pss),
    ("errors", lambda r: "; ".join(e[:80] for e in r.get("errors", [])) or "none"),
]


def column_title(res: dict[str, Any], env: dict[str, Any]) -> str:
    t = res["timing"]
    name = "Patroni " + (env.get("patroni") or "").replace("patroni ", "") \
        if res["agent"] == "patroni" else "Howdah"
    return f"{name.strip()} (ttl {t['ttl']}/{t['loop_wait']}/{t['retry_timeout']})"


def markdown_table(results: list[dict[str, Any]], env: dict[str, Any]) -> str:
    head = ["metric"] + [column_title(r, env) for r in results]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for title, fn in ROWS:
        lines.append("| " + " | ".join([title] + [fn(r) for r in results]) + " |")
    return "\n".join(lines)
