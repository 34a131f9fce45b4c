"""Polling with generous deadlines: assert behaviour, not durations."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 120.0, interval: float = 0.2,
               what: str = "condition", details: Callable[[], str] | None = None) -> T:
    """Call check() until it returns something truthy and return that; raise
    TimeoutError (with details(), e.g. cluster logs) after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        result: T | None
        try:
            result = check()
            last = result
        except Exception as exc:  # noqa: BLE001 - a check may fail while things settle
            result, last = None, exc
        if result:
            return result
        if time.monotonic() >= deadline:
            extra = ("\n" + details()) if details else ""
            raise TimeoutError(f"{what}: not reached within {timeout}s (last: {last!r}){extra}")
        time.sleep(interval)


def wait_for(what: str, check: Callable[[], T], timeout: float = 120.0,
             every: float = 0.2) -> T:
    """wait_until with the description first, as the tier's tests read best."""
    return wait_until(check, timeout=timeout, interval=every, what=what)
