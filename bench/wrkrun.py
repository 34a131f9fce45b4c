"""wrk against one URL: requests/s and latency percentiles (wrk --latency)."""
from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return round(float(match.group(1)) * _UNITS_MS[match.group(2)], 3)


def parse_wrk(out: str) -> dict[str, Any]:
    """The figures of wrk's text report (requests/s, p50/p90/p99, errors)."""
    res: dict[str, Any] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        res["requests_per_s"] = round(float(m.group(1)), 1)
    for pct in ("50", "75", "90", "99"):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            res[f"p{pct}_ms"] = _ms(m.group(1))
    if m := re.search(r"(\d+) requests in ([\d.]+\w+)", out):
        res["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        res["non_2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      out):
        # "read" errors also count connections the server closed after a
        # response (HTTP/1.0 style, no keep-alive); the requests themselves succeeded.
        res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                        (int(g) for g in m.groups())))
    return res


def run_wrk(url: str, seconds: int = 10, threads: int = 2, connections: int = 16) -> dict[str, Any]:
    """Run `wrk -tT -cC -dSs --latency url` and return its parsed figures."""
    exe = shutil.which("wrk")
    if exe is None:
        raise FileNotFoundError("wrk is not installed (tools/setup-host.sh installs it)")
    cmd = [exe, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-500:]}")
    res = parse_wrk(proc.stdout)
    res["command"] = " ".join(["wrk"] + cmd[1:])
    return res
