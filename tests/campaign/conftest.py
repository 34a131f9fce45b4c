"""Campaign tier: the fault campaign (engine.py) on real PostgreSQL and etcd,
short: a few faults per run, safety properties only (never timings)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

TESTS = Path(__file__).resolve().parents[1]
for path in (TESTS, TESTS / "campaign"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(autouse=True)
def _netcut_rules_removed() -> Iterator[None]:
    """No partition rule or cgroup outlives a test, failed or not, and none left
    by a killed run (its process gone) is in the way of the next one."""
    from harness import netcut
    if os.geteuid() == 0 and netcut.cgroup2_root() is not None:
        netcut.purge_stale()
    yield
    if os.geteuid() == 0 and netcut.cgroup2_root() is not None:
        netcut.purge_stale(own=True)
