"""One long-running task at a time, off the HA loop, visible to decide()."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from howdah.core.models import Task, TaskKind, TaskResult

log = logging.getLogger(__name__)


class TaskRunner:
    def __init__(self, clock: Callable[[], float], wake: threading.Event) -> None:
        self._clock = clock
        self._wake = wake
        self._lock = threading.Lock()
        self._task: Task | None = None
        self._result: TaskResult | None = None

    def current(self) -> Task | None:
        with self._lock:
            return self._task

    def take_result(self) -> TaskResult | None:
        with self._lock:
            result, self._result = self._result, None
            return result

    def start(self, kind: TaskKind, fn: Callable[[], bool]) -> bool:
        with self._lock:
            if self._task is not None:
                return False
            self._task = Task(kind=kind, started=self._clock())
        threading.Thread(target=self._run, args=(kind, fn), name=kind.name.lower(), daemon=True).start()
        return True

    def _run(self, kind: TaskKind, fn: Callable[[], bool]) -> None:
        try:
            ok, detail = bool(fn()), ""
        except Exception as exc:  # a task must never kill the agent
            log.exception("%s failed", kind.value)
            ok, detail = False, str(exc)
        with self._lock:
            self._task = None
            self._result = TaskResult(kind=kind, ok=ok, detail=detail)
        log.info("%s %s", kind.value, "finished" if ok else "failed")
        if ok:  # a failure is retried at the normal pace, not in a tight loop
            self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        import time
        deadline = time.monotonic() + timeout
        while self.current() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.current() is None
