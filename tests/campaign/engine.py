"""The fault campaign (issue 10): 3 nodes on real PostgreSQL and etcd, writers
recording every acknowledged id, a seeded sequence of faults, probes every
~100 ms of which nodes commit a write and which answer /primary 200, and at
the end a look-up of every acknowledged id.

Used by tests/campaign (a few faults, safety properties only) and by
bench/campaign.py (every fault, Howdah beside Patroni, figures).

A partition of the leader is made in the kernel (tests/harness/netcut.py): each
node's processes (agent, PostgreSQL, Howdah's fence) run in a cgroup of their
own, and iptables rules REJECT (TCP reset) or DROP every connection between the
leader and etcd or its peers, established ones included.  Writers and probes run
outside the nodes' cgroups: they are clients that still reach the partitioned
node, the ones a split brain would hurt.
"""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from harness import LocalCluster
from harness.netcut import NetCut
from harness.node import AgentNode

MODES: dict[str, dict[str, Any]] = {
    "async": {},
    "sync": {"synchronous_mode": True},
    "strict": {"synchronous_mode": True, "synchronous_mode_strict": True},
    "quorum": {"synchronous_mode": "quorum"},
}
FAULTS = ("kill9_leader_agent", "node_loss", "kill9_pg_child", "sigstop_leader_agent",
          "sigstop_etcd", "replica_loss", "partition_leader_reject", "partition_leader_drop",
          "full_restart")
TABLE = "campaign_acks"


@dataclass
class Probe:
    at: float
    committed: frozenset[str]
    primary_200: frozenset[str]


@dataclass
class Result:
    kind: str
    mode: str
    seed: int
    faults: list[str]
    acked: int = 0
    lost: list[int] = field(default_factory=list)
    split_commit_rounds: int = 0   # probe rounds in which two nodes committed
    split_api_rounds: int = 0      # probe rounds in which two nodes answered /primary 200
    split_commit_seconds: float = 0.0
    longest_no_writer: dict[str, float] = field(default_factory=dict)  # per fault
    probes: int = 0
    duration: float = 0.0
    # inactive slots nobody will use, left on some node a minute after the last fault
    # (issue 11: none older than member_slots_ttl; every member is back by then)
    stale_slots: list[str] = field(default_factory=list)

    def summary(self) -> str:
        stalls = ", ".join(f"{k} {v:.1f}s" for k, v in self.longest_no_writer.items())
        return (f"{self.kind}/{self.mode} seed {self.seed}: {self.acked} acknowledged, "
                f"{len(self.lost)} lost, split-brain rounds: commit {self.split_commit_rounds} "
                f"({self.split_commit_seconds:.1f}s), /primary {self.split_api_rounds}; "
                f"longest time without a writable primary per fault: {stalls}; "
                f"{self.probes} probe rounds in {self.duration:.0f}s; "
                f"stale slots: {', '.join(self.stale_slots) or 'none'}")


class Writers:
    """n clients, each inserting increasing ids into whichever node takes them,
    recording an id only once its COMMIT returned.  No statement_timeout: a
    cancelled wait for a synchronous standby still reports success, and that
    write would be acknowledged without being replicated."""

    def __init__(self, nodes: list[AgentNode], n: int = 3) -> None:
        self.nodes, self.n = nodes, n
        self.acked: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for w in range(self.n):
            t = threading.Thread(target=self._run, args=(w,), daemon=True, name=f"writer-{w}")
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(20)  # one stuck on a commit that never returns is not acknowledged

    def _run(self, w: int) -> None:
        seq, conn, at = 0, None, w % len(self.nodes)
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = _connect(self.nodes[at])
                seq += 1
                ident = (w + 1) * 1_000_000_000 + seq
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {TABLE} (id) VALUES (%s)", (ident,))
                with self._lock:
                    self.acked.append(ident)
                self._stop.wait(0.01)
            except Exception:  # noqa: BLE001 - not the primary, or it went away
                _close(conn)
                conn = None
                at = (at + 1) % len(self.nodes)
                self._stop.wait(0.05)
        _close(conn)


def _connect(node: AgentNode) -> Any:
    import psycopg2
    from harness.config import SUPERUSER
    conn = psycopg2.connect(host="127.0.0.1", port=node.pg_port, dbname="postgres",
                            user=SUPERUSER[0], password=SUPERUSER[1], connect_timeout=2,
                            application_name="campaign", keepalives=1, keepalives_idle=2,
                            keepalives_interval=1, keepalives_count=2)
    conn.autocommit = True
    return conn


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass


class Prober:
    """Every ~100 ms: on each node at once, one committed INSERT (probe table)
    and GET /primary; a node counts when it answers within the round."""

    def __init__(self, nodes: list[AgentNode], interval: float = 0.1, wait: float = 0.5) -> None:
        self.nodes, self.interval, self.wait = nodes, interval, wait
        self.rounds: list[Probe] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="prober")
        self._workers = {n.name: _NodeWorker(n) for n in nodes}

    def start(self) -> None:
        for w in self._workers.values():
            w.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for w in self._workers.values():
            w.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            tickets = {name: w.ask() for name, w in self._workers.items()}
            deadline = started + self.wait
            committed, api = set(), set()
            for name, ticket in tickets.items():
                if ticket is None:
                    continue  # still busy with an earlier round: not answering now
                ticket.done.wait(max(0.0, deadline - time.monotonic()))
                if ticket.committed:
                    committed.add(name)
                if ticket.api_200:
                    api.add(name)
            self.rounds.append(Probe(started, frozenset(committed), frozenset(api)))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


@dataclass
class _Ticket:
    done: threading.Event = field(default_factory=threading.Event)
    committed: bool = False
    api_200: bool = False


class _NodeWorker:
    def __init__(self, node: AgentNode) -> None:
        self.node = node
        self._next: _Ticket | None = None
        self._busy = False
        self._cv = threading.Condition()
        self._stop = False
        self._conn: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"probe-{node.name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(10)
        if not self._thread.is_alive():  # else it is stuck on a commit: closing
            _close(self._conn)           # its connection from here would wait forever

    def ask(self) -> _Ticket | None:
        with self._cv:
            if self._busy or self._next is not None:
                return None
            self._next = _Ticket()
            self._cv.notify()
            return self._next

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._next is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                ticket, self._next, self._busy = self._next, None, True
            try:
                ticket.api_200 = self.node.api("/primary", timeout=0.4)[0] == 200
                try:
                    if self._conn is None:
                        self._conn = _connect(self.node)
                    with self._conn.cursor() as cur:
                        cur.execute("INSERT INTO harness_probe (writer) VALUES (%s)",
                                    (self.node.name,))
                    ticket.committed = True
                except Exception:  # noqa: BLE001
                    _close(self._conn)
                    self._conn = None
            finally:
                with self._cv:
                    self._busy = False
                ticket.done.set()


class Campaign:
    def __init__(self, kind: str = "howdah", mode: str = "async", seed: int = 1,
                 faults: list[str] | None = None, ttl: int = 8, loop_wait: int = 1,
                 retry_timeout: int = 3, hold: float | None = None, gap: float = 2.0,
                 log: Callable[[str], None] = lambda s: None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}")
        self.kind, self.mode, self.seed = kind, mode, seed
        self.faults = list(faults if faults is not None else FAULTS)
        self.timing = {"ttl": ttl, "loop_wait": loop_wait, "retry_timeout": retry_timeout}
        self.hold = hold if hold is not None else 2.0 * ttl  # a fault outlasts the lease
        self.gap = gap  # steady state between a fault's recovery and the next fault
        self.rng = random.Random(seed)
        self.log = log
        self.net: NetCut | None = None
        self.marks: list[tuple[str, float, float]] = []  # fault, applied, healed

    # --- setup ---------------------------------------------------------------
    def _cluster(self) -> LocalCluster:
        dcs = {k: v for k, v in MODES[self.mode].items()}
        extra = {"bootstrap": {"dcs": dcs}} if dcs else {}
        t = self.timing
        return LocalCluster(3, kind=self.kind, ttl=t["ttl"], loop_wait=t["loop_wait"],
                            retry_timeout=t["retry_timeout"], extra=extra, start_agents=False)

    def _wire(self, c: LocalCluster) -> None:
        """Each node in a cgroup of its own from its first start on (its
        connections are marked from then on: see harness/netcut.py)."""
        if not any(f.startswith("partition_") for f in self.faults):
            return
        assert c.etcd is not None
        etcd_port = int(c.etcd.host_port.rsplit(":", 1)[1])
        net = self.net = NetCut({n.name: (n.api_port, n.pg_port) for n in c.nodes}, [etcd_port])
        for node in c.nodes:
            def start(node: AgentNode = node, plain: Callable[[], None] = node.start) -> None:
                plain()
                assert node.proc is not None
                net.enroll(node.name, [node.proc.pid])  # before it opened any connection
            setattr(node, "start", start)

    def _partition(self, node: AgentNode, how: str) -> Callable[[], None]:
        assert self.net is not None
        from harness import procs
        self.net.enroll(node.name, procs.pids_under(node.workdir))  # none should be missing
        pids = [p for p in (node.agent_pid, node.postmaster_pid()) if p]
        outside = [p for p in pids if not self.net.member(node.name, p)]
        if outside:
            self.log(f"partition: pids {outside} of {node.name} not in its cgroup")
        self.net.cut(node.name, how)
        return self.net.heal

    def settle(self, c: LocalCluster, timeout: float = 240) -> AgentNode:
        """A leader with one streaming replica (what every mode needs to take
        writes), then up to a minute more for the second one."""
        c.wait_leader(timeout)
        c.wait_streaming(1, timeout)
        try:
            c.wait_streaming(2, 60)
        except TimeoutError:
            self.log("settle: only one replica streams; going on")
        if self.mode != "async" and not self._sync_named(c, 60):
            self.log("settle: /sync names no standby yet; going on")
        return c.wait_leader(timeout)

    @staticmethod
    def _sync_named(c: LocalCluster, timeout: float) -> bool:
        """Until /sync names a standby: before that only the old leader may lead
        again (both agents, by design: its commits may have been acknowledged
        with no standby), so a fault in that window is a second fault on a
        cluster that has not recovered from the first, not a single one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = json.loads(c.dcs_key("sync") or "{}")
            except ValueError:
                value = {}
            if isinstance(value, dict) and value.get("leader") and value.get("sync_standby"):
                return True
            time.sleep(0.2)
        return False

    # --- faults ----------------------------------------------------------------
    def _apply(self, c: LocalCluster, fault: str) -> Callable[[], None]:
        leader = c.wait_leader(120)
        replicas = [n for n in c.nodes if n is not leader]
        if fault == "kill9_leader_agent":  # postgres (and Howdah's fence) run on
            assert leader.proc is not None
            os.kill(leader.proc.pid, signal.SIGKILL)
            leader.proc.wait(30)
            return lambda: self._restart(leader)
        if fault == "node_loss":
            leader.kill9()
            return lambda: self._restart(leader)
        if fault == "kill9_pg_child":
            child = _pg_child(leader)
            if child is not None:
                os.kill(child, signal.SIGKILL)
            return lambda: None
        if fault == "sigstop_leader_agent":
            leader.freeze()
            return leader.thaw
        if fault == "sigstop_etcd":
            assert c.etcd is not None
            c.etcd.freeze()
            return c.etcd.thaw
        if fault == "replica_loss":
            victim = self.rng.choice(replicas)
            victim.kill9()
            return lambda: self._restart(victim)
        if fault in ("partition_leader_reject", "partition_leader_drop"):
            return self._partition(leader, fault.rsplit("_", 1)[1])
        if fault == "full_restart":
            for node in c.nodes:
                node.stop_sigterm(120)
            return lambda: c.start_agents()
        raise ValueError(f"unknown fault {fault!r}")

    @staticmethod
    def _restart(node: AgentNode) -> None:
        if node.is_running():
            return
        node.start()

    # --- the run ---------------------------------------------------------------
    def run(self) -> Result:
        res = Result(self.kind, self.mode, self.seed, self.faults)
        begun = time.monotonic()
        with self._cluster() as c:
            try:
                self._wire(c)
                c.start_agents([c.nodes[0]])
                c.wait_leader(240)
                c.start_agents(c.nodes[1:])
                leader = self.settle(c)
                leader.sql(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint PRIMARY KEY, "
                           "at timestamptz NOT NULL DEFAULT now())")
                from harness.probe import ensure_probe_table
                ensure_probe_table(leader)
                writers, prober = Writers(c.nodes), Prober(c.nodes)
                writers.start()
                prober.start()
                try:
                    for fault in self.faults:
                        self.log(f"{self.kind}/{self.mode}: {fault}")
                        applied = time.monotonic()
                        heal = self._apply(c, fault)
                        time.sleep(self.hold if fault != "kill9_pg_child" else 5)
                        heal()
                        healed = time.monotonic()
                        self.marks.append((fault, applied, healed))
                        self.settle(c)
                        time.sleep(self.gap)
                finally:
                    writers.stop()
                    prober.stop()
                try:
                    leader = self.settle(c)
                except TimeoutError as exc:  # score what was acknowledged all the same
                    self.log(f"final settle: {exc}; looking the ids up on the leader")
                    leader = c.wait_leader(120)
                res.acked = len(writers.acked)
                res.lost = lost_ids(leader, writers.acked)
                self._score(res, prober.rounds)
                res.stale_slots = self._stale_slots(c)
            except BaseException:
                self.log("campaign failed; cluster logs:\n" + c.dump_logs(60))
                raise
            finally:
                if self.net is not None:
                    self.net.close()
        res.duration = time.monotonic() - begun
        return res

    def _stale_slots(self, c: LocalCluster, timeout: float = 60.0) -> list[str]:
        """What is still stale once slot hygiene had `timeout` s (a cycle or two) to act."""
        from harness.slots import stale_slots, wait_no_stale_slots
        try:
            wait_no_stale_slots(c, timeout)
        except TimeoutError:
            pass
        return stale_slots(c)

    def _score(self, res: Result, rounds: list[Probe]) -> None:
        res.probes = len(rounds)
        prev: float | None = None
        for r in rounds:
            if len(r.committed) > 1:
                res.split_commit_rounds += 1
                res.split_commit_seconds += (r.at - prev) if prev is not None else 0.1
            if len(r.primary_200) > 1:
                res.split_api_rounds += 1
            prev = r.at
        for fault, applied, healed in self.marks:
            end = healed + 60
            gap, last = 0.0, applied
            for r in rounds:
                if r.at < applied or r.at > end:
                    continue
                if r.committed:
                    gap = max(gap, r.at - last)
                    last = r.at
                    if r.at > healed:
                        break
            key = fault if fault not in res.longest_no_writer else f"{fault}#{len(self.marks)}"
            res.longest_no_writer[key] = gap


def lost_ids(leader: AgentNode, acked: list[int]) -> list[int]:
    found: set[int] = set()
    conn = _connect(leader)
    try:
        with conn.cursor() as cur:
            for i in range(0, len(acked), 5000):
                chunk = acked[i:i + 5000]
                cur.execute(f"SELECT id FROM {TABLE} WHERE id = ANY(%s)", (chunk,))
                found.update(int(row[0]) for row in cur.fetchall())
    finally:
        _close(conn)
    return sorted(set(acked) - found)


def _pg_child(node: AgentNode) -> int | None:
    """A backend-type child of the node's postmaster (not the postmaster)."""
    pm = node.postmaster_pid()
    if pm is None:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pm:
            return int(entry)
    return None
