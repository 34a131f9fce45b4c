"""Campaign tier: the fault campaign (engine.py) on real PostgreSQL and etcd,
short: a few faults per run, safety properties only (never timings)."""
from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for path in (TESTS, TESTS / "campaign"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
