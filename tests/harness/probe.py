"""A writer that tries a committed INSERT on every node, every `interval` seconds.

One thread per node, each with its own persistent connection (reconnected on
any error, connect_timeout 2 s), so a dead or frozen node never delays the
probes of the others. Every commit that returns is recorded with the
monotonic time at which it returned: "node X accepted a write at t".
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from .node import PROBE_DDL, PROBE_TABLE, AgentNode


def close_quietly(conn: Any) -> None:
    """Close a connection that may be None or already broken."""
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - a broken connection is closed either way
            pass


@dataclass(frozen=True)
class Write:
    node: str
    at: float  # time.monotonic() when COMMIT returned


class WriterProbe:
    def __init__(self, nodes: Sequence[AgentNode], interval: float = 0.05) -> None:
        self.nodes = list(nodes)
        self.interval = interval
        self.writes: list[Write] = []
        self.errors: dict[str, int] = {n.name: 0 for n in self.nodes}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "WriterProbe":
        for node in self.nodes:
            thread = threading.Thread(target=self._run, args=(node,),
                                      name=f"probe-{node.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads.clear()

    def __enter__(self) -> "WriterProbe":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, node: AgentNode) -> None:
        conn: Any = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    conn = node.connect(connect_timeout=2)
                    with conn.cursor() as cur:
                        cur.execute("SET statement_timeout = 2000")
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {PROBE_TABLE} (writer) VALUES (%s)",
                                (node.name,))
                with self._lock:
                    self.writes.append(Write(node.name, time.monotonic()))
            except Exception:  # noqa: BLE001 - any failure means "not writable now"
                with self._lock:
                    self.errors[node.name] += 1
                close_quietly(conn)
                conn = None
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        close_quietly(conn)

    # --- queries ----------------------------------------------------------
    def snapshot(self) -> list[Write]:
        with self._lock:
            return list(self.writes)

    def first_write(self, after: float, exclude: Sequence[str] = ()) -> Write | None:
        """The first commit at or after `after` on a node not in exclude."""
        for write in self.snapshot():
            if write.at >= after and write.node not in exclude:
                return write
        return None

    def wait_write(self, after: float, exclude: Sequence[str] = (),
                   timeout: float = 300.0) -> Write | None:
        """Block until first_write(after, exclude) exists or timeout passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.first_write(after, exclude)
            if found is not None:
                return found
            time.sleep(0.01)
        return self.first_write(after, exclude)

    def writers_between(self, start: float, end: float) -> set[str]:
        """Nodes that committed at least one write in [start, end]."""
        return {w.node for w in self.snapshot() if start <= w.at <= end}


def ensure_probe_table(leader: AgentNode) -> None:
    leader.sql(PROBE_DDL)
