#!/usr/bin/env python3
"""The image's figures (issue 15): its size, and `docker compose up -d` -> the first committed
write through HAProxy's primary port, with the image already built.

    .venv/bin/python bench/image.py [--runs 3]

Uses the compose tier's own project and probe (tests/compose/helpers.py): `up -d`, then
CREATE TABLE IF NOT EXISTS ...; INSERT through :5000 every 200 ms until one commits; `down -v`
after each run.  Results go to bench/results/image-<UTC time>.json and are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import docker  # noqa: E402

from tests.compose.helpers import IMAGE, Project, build_image, sql, wait_for  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env(timeout=300)
    started = time.monotonic()
    build_image()
    build_seconds = time.monotonic() - started
    size = client.images.get(IMAGE).attrs["Size"]
    runs = []
    for _ in range(args.runs):
        project = Project(client)
        try:
            t0 = time.monotonic()
            project.compose("up", "-d")
            wait_for("a committed write through the primary port", lambda: sql(
                project.primary_port, "create table if not exists up_probe(x int); insert into up_probe values (1)") == [],
                timeout=120, interval=0.2)
            runs.append(round(time.monotonic() - t0, 2))
        finally:
            project.compose("down", "-v", "--remove-orphans", "-t", "20")
    result = {"image": IMAGE, "size_bytes": size, "size_mb": round(size / 1e6, 1),
              "build_or_cache_seconds": round(build_seconds, 1), "compose_up_to_first_write_s": runs,
              "loadavg": os.getloadavg(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = ROOT / "bench" / "results" / f"image-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
