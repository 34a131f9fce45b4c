#!/usr/bin/env python3
"""The image's figures (issue 15): its size, and `docker compose up -d` -> the first committed
write through HAProxy's primary port, with the image already built.

    .venv/bin/python bench/image.py [--runs 3]

Uses the compose tier's own project and probe (tests/compose/helpers.py): `up -d`, then
CREATE TABLE IF NOT EXISTS ...; INSERT through :5000 every 200 ms until one commits; `down -v`
after each run.  Each run also records where the time went, from the containers' own
timestamped logs (seconds after `up -d` was started): containers started, the entrypoint
done, the agent's REST API listening, the leader lock acquired, initdb done, bootstrap
finished, HAProxy's first primary UP.  Results go to bench/results/image-<UTC time>.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import docker  # noqa: E402

from tests.compose.helpers import IMAGE, NODES, Project, build_image, sql, wait_for  # noqa: E402

# phase -> a log line that marks its end (the first such line of any node, or of HAProxy)
PHASES = (("entrypoint_done", re.compile(r"howdah-entrypoint: node ")),
          ("rest_api_listening", re.compile(r"REST API listening")),
          ("leader_acquired", re.compile(r"acquired the leader lock")),
          ("initdb_done", re.compile(r"initdb: exited with 0")),
          ("bootstrap_finished", re.compile(r"bootstrap finished")),
          ("haproxy_primary_up", re.compile(r"Server primary/\S+ is UP")))


def _stamp(text: str) -> float:
    """docker's RFC 3339 nanosecond timestamp -> epoch seconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    when = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() + float("0." + (frac or "0")[:6])


def phases(project: Project, t0: float) -> dict[str, float]:
    """Seconds after t0 (epoch) at which each phase ended first, from `docker logs -t`."""
    out: dict[str, float] = {}
    started = []
    for service in (*NODES, "haproxy"):
        container = project.container(service)
        started.append(_stamp(container.attrs["State"]["StartedAt"]))
        logs = subprocess.run(["docker", "logs", "-t", container.id], capture_output=True, text=True)
        for line in (logs.stdout + logs.stderr).splitlines():
            stamp, _, rest = line.partition(" ")
            for name, pattern in PHASES:
                if pattern.search(rest):
                    try:
                        at = _stamp(stamp) - t0
                    except ValueError:
                        continue
                    out[name] = round(min(out.get(name, at), at), 2)
    out["nodes_started"] = round(min(started[:-1]) - t0, 2)
    return dict(sorted(out.items(), key=lambda item: item[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env(timeout=300)
    started = time.monotonic()
    build_image()
    build_seconds = time.monotonic() - started
    size = client.images.get(IMAGE).attrs["Size"]
    runs, breakdown, loads = [], [], []
    for _ in range(args.runs):
        project = Project(client)
        try:
            loads.append(os.getloadavg()[0])
            t0, wall0 = time.monotonic(), time.time()
            project.compose("up", "-d")
            up_returned = time.monotonic() - t0
            wait_for("a committed write through the primary port", lambda: sql(
                project.primary_port, "create table if not exists up_probe(x int); insert into up_probe values (1)") == [],
                timeout=120, interval=0.2)
            runs.append(round(time.monotonic() - t0, 2))
            breakdown.append({"up_d_returned": round(up_returned, 2), **phases(project, wall0),
                              "first_write": runs[-1]})
        finally:
            project.compose("down", "-v", "--remove-orphans", "-t", "20")
    result = {"image": IMAGE, "size_bytes": size, "size_mb": round(size / 1e6, 1),
              "build_or_cache_seconds": round(build_seconds, 1), "compose_up_to_first_write_s": runs,
              "phases_s": breakdown, "loadavg_1min_at_each_start": loads,
              "loadavg": os.getloadavg(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = ROOT / "bench" / "results" / f"image-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
