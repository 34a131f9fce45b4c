"""LocalCluster: etcd plus n agents with their PostgreSQL, all on 127.0.0.1."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Iterable

from . import procs
from .config import NodeSpec, Timing, deep_merge
from .etcd import EtcdServer, default_dcs
from .node import AgentNode
from .ports import Reservation
from .probe import WriterProbe, ensure_probe_table

BASE_PREFIX = "howdah-harness-"
_live: "weakref.WeakSet[LocalCluster]" = weakref.WeakSet()


def _start_time(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()[19]


def sweep_stale(tmp: str | None = None) -> None:
    """Kill and remove what harness runs whose process has died left behind."""
    root = Path(tmp or tempfile.gettempdir())
    for base in root.glob(BASE_PREFIX + "*"):
        try:
            pid_s, start = (base / "owner").read_text().split()
            pid = int(pid_s)
        except (OSError, ValueError):
            continue
        if procs.alive(pid) and _start_time(pid) == start:
            continue  # its owner is still running (maybe a parallel test)
        procs.kill_all_under(base, 30)
        shutil.rmtree(base, ignore_errors=True)


class LocalCluster:
    """Context manager: etcd + n nodes named n1..nN of one agent kind.

    extra is deep-merged into every node's config (node_extra[name] after it);
    maps merge, lists replace, None deletes a key.
    """

    def __init__(self, n: int = 3, kind: str = "howdah", ttl: int = 30,
                 loop_wait: int = 10, retry_timeout: int = 10,
                 extra: dict[str, Any] | None = None, *,
                 node_extra: dict[str, dict[str, Any]] | None = None,
                 tags: dict[str, dict[str, Any]] | None = None,
                 scope: str = "harness", maximum_lag_on_failover: int = 1048576,
                 start_agents: bool = True, root: str | Path | None = None,
                 dcs: str | None = None, etcd: EtcdServer | None = None) -> None:
        self.n, self.kind, self.scope = n, kind, scope
        # "etcd3" (v2 API off) or "etcd" (v2 API); a given (shared, started) etcd
        # decides it and is left running at close
        self.dcs = etcd.dcs_kind if etcd is not None else dcs or default_dcs()
        self.shared_etcd = etcd
        self.timing = Timing(ttl, loop_wait, retry_timeout, maximum_lag_on_failover)
        self.extra = extra or {}
        self.node_extra = node_extra or {}
        self.tags = tags or {}
        self.auto_start = start_agents
        root = root or os.environ.get("HARNESS_ROOT") or tempfile.gettempdir()
        self.root = Path(root).resolve()  # absolute: agents run in their own cwd
        self.ports = Reservation()
        self.base: Path | None = None
        self.etcd: EtcdServer | None = None
        self.nodes: list[AgentNode] = []
        self.agents_started_at: float | None = None

    # --- lifecycle --------------------------------------------------------
    def __enter__(self) -> "LocalCluster":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        procs.start_reaper()
        self.root.mkdir(parents=True, exist_ok=True)
        sweep_stale(str(self.root))
        _live.add(self)
        self.base = Path(tempfile.mkdtemp(prefix=f"{BASE_PREFIX}{os.getpid()}-",
                                          dir=self.root))
        os.chmod(self.base, 0o755)
        (self.base / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
        (self.base / "README").write_text(
            f"A LIVE test cluster of process {os.getpid()} (tests/harness). Do not delete "
            "it by hand: that breaks a running test or benchmark. The harness removes it "
            "when that process ends, and sweeps it later if the process died.\n")
        procs.register_root(self.base)
        if self.shared_etcd is not None:
            self.etcd = self.shared_etcd
        else:
            self.etcd = EtcdServer(self.base / "etcd", self.ports, v2=self.dcs == "etcd")
            self.etcd.start()
        for i in range(1, self.n + 1):
            name = f"n{i}"
            pg_port, api_port = self.ports.take_many(2)
            spec = NodeSpec(name=name, scope=self.scope, workdir=self.base / name,
                            pg_port=pg_port, api_port=api_port,
                            etcd_hosts=[self.etcd.host_port], timing=self.timing,
                            tags=self.tags.get(name, {}), dcs=self.dcs)
            extra = deep_merge(self.extra, self.node_extra.get(name, {}))
            self.nodes.append(AgentNode(spec, self.kind, extra))
        if self.auto_start:
            self.start_agents()

    def start_agents(self, nodes: Iterable[AgentNode] | None = None) -> None:
        """Start the given (default: all) agents, back to back."""
        self.agents_started_at = time.monotonic()
        for node in nodes if nodes is not None else self.nodes:
            node.start()

    def close(self) -> None:
        """Kill every process, release ports, remove the directory; never raises.
        HARNESS_KEEP=1 keeps the directory (logs, data) for a post-mortem."""
        for node in self.nodes:
            node.destroy()
        if self.etcd is not None and self.shared_etcd is None:
            self.etcd.stop()
        if self.base is not None:
            procs.kill_all_under(self.base, 30)
            procs.unregister_root(self.base)
            if os.environ.get("HARNESS_KEEP") != "1":
                shutil.rmtree(self.base, ignore_errors=True)
        self.ports.release()
        _live.discard(self)

    # --- lookup -----------------------------------------------------------
    def node(self, name: str) -> AgentNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def dcs_key(self, key: str) -> str | None:
        """Value of /<namespace>/<scope>/<key> in etcd (None if absent or etcd is down)."""
        assert self.etcd is not None
        return self.etcd.get(f"/service/{self.scope}/{key}")

    def dcs_json(self, key: str) -> dict[str, Any]:
        """dcs_key(key) as a JSON object: {} when absent, not JSON, or not an object."""
        try:
            value = json.loads(self.dcs_key(key) or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def dcs_client(self, name: str = "test", scope: str | None = None) -> Any:
        """A howdah.dcs backend on this cluster's etcd, as member `name`."""
        from howdah.dcs import open_backend
        assert self.etcd is not None
        return open_backend(self.dcs, {"hosts": self.etcd.host_port}, "/service/",
                            scope or self.scope, name, 2.0)

    def primaries(self) -> list[AgentNode]:
        """Nodes whose REST API answers GET /primary with 200."""
        return [n for n in self.nodes if n.api("/primary")[0] == 200]

    def leader(self) -> AgentNode | None:
        """The node holding the DCS leader key and answering /primary 200."""
        name = self.dcs_key("leader")
        if name is None:
            return None
        try:
            node = self.node(name)
        except KeyError:
            return None
        return node if node.api("/primary")[0] == 200 else None

    def replicas(self) -> list[AgentNode]:
        """Running nodes whose /patroni role is replica."""
        return [n for n in self.nodes if n.is_running() and n.role() == "replica"]

    def streaming(self, leader: AgentNode) -> list[str]:
        """Names streaming from leader: pg_stat_replication, else /patroni's list."""
        rows: list[tuple[Any, ...]] | None
        try:
            rows = leader.sql("SELECT application_name, state FROM pg_stat_replication")
        except Exception:  # noqa: BLE001
            code, body = leader.api("/patroni")
            listed = body.get("replication") if code and isinstance(body, dict) else None
            rows = [(r.get("application_name"), r.get("state")) for r in listed or []
                    if isinstance(r, dict)]
        names = {n.name for n in self.nodes if n is not leader}
        return sorted({str(app) for app, state in rows if state == "streaming" and app in names})

    # --- waiting ----------------------------------------------------------
    def wait_leader(self, timeout: float = 180.0, exclude: Iterable[str] = ()) -> AgentNode:
        """Wait for a leader() whose name is not in exclude."""
        skip = set(exclude)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = self.leader()
            if node is not None and node.name not in skip:
                return node
            time.sleep(0.2)
        raise TimeoutError(f"no leader (excluding {sorted(skip)}) within {timeout}s\n"
                           + self.dump_logs(40))

    def wait_streaming(self, count: int | None = None, timeout: float = 300.0) -> list[str]:
        """Wait for a leader with at least count (default n-1) streaming replicas."""
        want = self.n - 1 if count is None else count
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                seen = self.streaming(leader)
                if len(seen) >= want:
                    return seen
            time.sleep(0.2)
        raise TimeoutError(f"{want} streaming replicas not reached in {timeout}s "
                           f"(streaming: {seen})\n" + self.dump_logs(40))

    def writer_probe(self, interval: float = 0.05) -> WriterProbe:
        """A WriterProbe over all nodes (use as a context manager); creates the
        probe table on the current leader first."""
        ensure_probe_table(self.wait_leader(60))
        return WriterProbe(self.nodes, interval)

    def dump_logs(self, tail: int = 80) -> str:
        parts = [node.log_text(tail) for node in self.nodes]
        if self.base is not None and not self.base.exists():
            parts.insert(0, f"!!! {self.base} no longer exists: something else removed "
                            "this running cluster's directory (logs and data are gone)")
        if self.etcd is not None:
            parts.append("--- etcd log ---\n" + self.etcd.log_text(tail // 2))
        return "\n".join(parts)


@atexit.register
def _close_all() -> None:
    for cluster in list(_live):
        cluster.close()
