"""A kernel-level network partition of one local node: iptables REJECT or DROP.

Every node stays on loopback, but its processes (the agent and everything it
starts: PostgreSQL, Howdah's fence) run in a cgroup v2 of their own, and a
mangle OUTPUT rule marks each connection a node's process opens with that
node's conntrack mark.  A partition of node X is then a set of filter OUTPUT
rules on the connection (both directions, established ones included):

* every connection X opened to etcd or to a peer's REST/PostgreSQL port;
* every connection a peer opened to X's REST/PostgreSQL port.

``reject`` answers with a TCP reset (``-j REJECT --reject-with tcp-reset``:
connections are refused or reset, as a REJECT firewall rule does), ``drop``
discards the packets (``-j DROP``: connections hang).  X still reaches itself,
and clients outside the nodes' cgroups (the test's writers and probes) still
reach every node: they are the clients a split brain would hurt.

Every rule carries the comment ``howdah-netcut:<pid>:<run>``; ``purge_stale``
removes rules and cgroups left by a process that is gone (a killed test run),
``NetCut.close`` (call it from a finalizer) those of this run.  Needs root,
iptables with the cgroup/conntrack/connmark matches, and a cgroup2 mount.
"""
from __future__ import annotations

import itertools
import os
import random
import re
import shlex
import subprocess
from pathlib import Path
from typing import Iterable

from .procs import alive

TAG = "howdah-netcut"
_runs = itertools.count(1)


def cgroup2_root() -> Path | None:
    """Where cgroup v2 is mounted (/sys/fs/cgroup or /sys/fs/cgroup/unified)."""
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return Path(fields[1])
    except OSError:
        pass
    return None


def unavailable() -> str | None:
    """Why a partition cannot be made here, or None."""
    if os.geteuid() != 0:
        return "netcut needs root (iptables rules, cgroups)"
    if cgroup2_root() is None:
        return "netcut needs a cgroup2 mount"
    try:
        subprocess.run(["iptables", "-w", "-S", "OUTPUT"], check=True, capture_output=True,
                       timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"netcut needs a working iptables: {exc}"
    return None


def _ipt(*args: str, table: str = "filter", check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["iptables", "-w", "-t", table, *args], capture_output=True,
                          text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"iptables -t {table} {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _tagged_rules(table: str) -> list[tuple[str, str]]:
    """(tag, rule spec after -A) of every rule of ours in table."""
    out = _ipt("-S", table=table).stdout
    found = []
    for line in out.splitlines():
        m = re.search(rf'--comment "?({TAG}:\d+:\d+)"?', line)
        if m and line.startswith("-A "):
            found.append((m.group(1), line[3:]))
    return found


def _delete(table: str, spec: str) -> None:
    # the spec comes from iptables -S itself, so it parses back as is
    _ipt("-D", *shlex.split(spec), table=table, check=False)


def _release(cgroup: Path) -> None:
    """Move what is left in a cgroup to the root one, then remove it."""
    root = cgroup2_root()
    for child in sorted(cgroup.glob("*/"), reverse=True):
        _release(child)
    try:
        pids = (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        pids = []
    for pid in pids:
        try:
            (root / "cgroup.procs").write_text(pid)  # type: ignore[operator]
        except OSError:
            pass
    try:
        cgroup.rmdir()
    except OSError:
        pass


def purge_stale(own: bool = False) -> list[str]:
    """Remove the rules and cgroups of runs whose process is gone (and, with
    own=True, those of this process: a finalizer's sweep); their tags."""
    def stale(pid: int) -> bool:
        return (own and pid == os.getpid()) or not alive(pid)
    gone: set[str] = set()
    for table in ("filter", "mangle"):
        for tag, spec in _tagged_rules(table):
            if stale(int(tag.split(":")[1])):
                _delete(table, spec)
                gone.add(tag)
    root = cgroup2_root()
    base = root / TAG if root else None
    if base is not None and base.is_dir():
        for run in base.iterdir():
            pid = run.name.split("-")[0]
            if run.is_dir() and pid.isdigit() and stale(int(pid)):
                _release(run)
                gone.add(f"{TAG}:{pid}:{run.name.split('-')[-1]}")
    return sorted(gone)


class NetCut:
    """Per-node cgroups and connection marks for one cluster; ``cut(name, how)``
    partitions one node, ``heal()`` removes every cut, ``close()`` everything."""

    def __init__(self, ports: dict[str, tuple[int, ...]], etcd_ports: Iterable[int]) -> None:
        """ports: each node's own TCP ports (REST, PostgreSQL); etcd_ports: the
        DCS's client ports (outside every node)."""
        why = unavailable()
        if why:
            raise RuntimeError(why)
        purge_stale()
        self.ports = {name: tuple(p) for name, p in ports.items()}
        self.etcd_ports = tuple(etcd_ports)
        run = next(_runs)
        self.tag = f"{TAG}:{os.getpid()}:{run}"
        root = cgroup2_root()
        assert root is not None
        self.base = root / TAG / f"{os.getpid()}-{run}"
        self.base.mkdir(parents=True, exist_ok=True)
        salt = random.getrandbits(20) << 8
        self.marks = {name: salt | (i + 1) for i, name in enumerate(self.ports)}
        self._cuts: list[str] = []  # filter specs in place
        self._marks: list[str] = []  # mangle specs in place
        try:
            for name, mark in self.marks.items():
                group = self.base / name
                group.mkdir(exist_ok=True)
                rel = str(group.relative_to(root))
                spec = ["OUTPUT", "-m", "cgroup", "--path", rel, "-m", "conntrack",
                        "--ctstate", "NEW", "-m", "comment", "--comment", self.tag,
                        "-j", "CONNMARK", "--set-mark", hex(mark)]
                _ipt("-I", *spec, table="mangle")
                self._marks.append(" ".join(spec))
        except BaseException:
            self.close()
            raise

    def enroll(self, name: str, pids: Iterable[int]) -> None:
        """Put processes of node `name` in its cgroup (their children follow)."""
        procs = self.base / name / "cgroup.procs"
        for pid in pids:
            try:
                procs.write_text(str(pid))
            except OSError:
                pass  # gone meanwhile

    def member(self, name: str, pid: int) -> bool:
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            return False
        return any(line.startswith("0::") and line.rstrip().endswith(f"/{name}") and
                   f"{os.getpid()}-" in line for line in text.splitlines())

    def cut(self, name: str, how: str) -> None:
        """Partition node `name` from etcd and its peers: how = reject | drop."""
        if how not in ("reject", "drop"):
            raise ValueError("how must be reject or drop")
        target = (["!", "--tcp-flags", "RST", "RST", "-j", "REJECT", "--reject-with",
                   "tcp-reset"] if how == "reject" else ["-j", "DROP"])
        # a REJECT's own reset belongs to the same connection: let it through
        flows: list[tuple[int, int]] = []  # (mark of the opener, original destination port)
        others = [p for n, ps in self.ports.items() if n != name for p in ps]
        flows += [(self.marks[name], p) for p in (*self.etcd_ports, *others)]
        flows += [(self.marks[n], p) for n in self.ports if n != name for p in self.ports[name]]
        for mark, port in flows:
            spec = ["OUTPUT", "-p", "tcp", "-m", "connmark", "--mark", hex(mark),
                    "-m", "conntrack", "--ctorigdstport", str(port),
                    "-m", "comment", "--comment", self.tag, "-m", "tcp", *target]
            _ipt("-I", *spec)
            self._cuts.append(" ".join(spec))

    def heal(self) -> None:
        while self._cuts:
            _ipt("-D", *self._cuts.pop().split(), check=False)

    def close(self) -> None:
        """Remove every rule and cgroup of this run; never raises."""
        try:
            self.heal()
            while self._marks:
                _ipt("-D", *self._marks.pop().split(), table="mangle", check=False)
        except Exception:  # noqa: BLE001
            pass
        for table in ("filter", "mangle"):
            try:
                for tag, spec in _tagged_rules(table):
                    if tag == self.tag:
                        _delete(table, spec)
            except Exception:  # noqa: BLE001
                pass
        _release(self.base)
