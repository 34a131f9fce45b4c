"""Memory-based defaults: read the container's memory limit (cgroup v1 or v2).

With a limit, ``shared_buffers`` is a quarter of it and ``max_connections`` grows with it (a
tenth of the limit in MiB, 30..1000).  With no limit (or one larger than the machine) the host's
memory is used as Spilo does: a quarter of it (a fifth under Kubernetes) for ``shared_buffers``
and one connection per 30 MiB, 100..1000.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
# cgroup v1 reports "no limit" as a huge page-aligned number (2^63 rounded down).
_UNLIMITED_V1 = 1 << 60


@dataclass(frozen=True)
class MemorySizing:
    limit_bytes: int | None
    shared_buffers: str
    max_connections: int


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def host_memory(proc_root: Path = Path("/proc")) -> int | None:
    text = _read(proc_root / "meminfo") or ""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def cgroup_memory_limit(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit in bytes, or None when there is none.

    cgroup v2 (unified) has ``memory.max`` ("max" when unlimited) at the root of the
    container's namespace; v1 has ``memory/memory.limit_in_bytes``.
    """
    v2 = _read(cgroup_root / "memory.max")
    if v2 is not None:
        return None if v2 == "max" or not v2.isdigit() else int(v2)
    v1 = _read(cgroup_root / "memory" / "memory.limit_in_bytes")
    if v1 is not None and v1.isdigit():
        value = int(v1)
        return None if value >= _UNLIMITED_V1 else value
    return None


def sizing(limit: int | None, host_total: int | None = None, kubernetes: bool = False) -> MemorySizing:
    """With a limit: shared_buffers = limit / 4 (>= 16MB), max_connections = limit in MiB / 10,
    30..1000.  Without one: Spilo's rule on the host's memory (see the module docstring)."""
    if limit is None or (host_total is not None and limit >= host_total):
        if not host_total:
            return MemorySizing(None, "128MB", 100)
        mib = host_total // MiB
        shared = max(16, mib // (5 if kubernetes else 4))
        return MemorySizing(None, f"{shared}MB", min(1000, max(100, mib // 30)))
    mib = limit // MiB
    shared = max(16, mib // 4)
    connections = min(1000, max(30, mib // 10))
    return MemorySizing(limit, f"{shared}MB", connections)


def detect(cgroup_root: Path = Path("/sys/fs/cgroup"), proc_root: Path = Path("/proc"),
           kubernetes: bool = False) -> MemorySizing:
    return sizing(cgroup_memory_limit(cgroup_root), host_memory(proc_root), kubernetes)
