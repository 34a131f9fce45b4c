"""cgroup v1 / v2 memory limits -> shared_buffers and max_connections."""
from __future__ import annotations

from pathlib import Path

import pytest

from howdah.entrypoint import memory

GiB = 1024 ** 3


def test_v2_limit(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text(f"{2 * GiB}\n")
    assert memory.cgroup_memory_limit(tmp_path) == 2 * GiB


def test_v2_unlimited(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text("max\n")
    assert memory.cgroup_memory_limit(tmp_path) is None


def test_v1_limit_and_unlimited(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    limit = tmp_path / "memory" / "memory.limit_in_bytes"
    limit.write_text(f"{GiB}\n")
    assert memory.cgroup_memory_limit(tmp_path) == GiB
    limit.write_text("9223372036854771712\n")
    assert memory.cgroup_memory_limit(tmp_path) is None


def test_no_cgroup(tmp_path: Path) -> None:
    assert memory.cgroup_memory_limit(tmp_path) is None


@pytest.mark.parametrize(
    "limit, shared, connections",
    [
        (None, "32768MB", 1000),  # no limit: Spilo's rule on the 128 GiB host
        (GiB, "256MB", 102),
        (4 * GiB, "1024MB", 409),
        (64 * 1024 * 1024, "16MB", 30),
        (64 * GiB, "16384MB", 1000),
    ],
)
def test_sizing(limit: int | None, shared: str, connections: int) -> None:
    result = memory.sizing(limit, host_total=128 * GiB)
    assert (result.shared_buffers, result.max_connections) == (shared, connections)


def test_limit_above_host_memory_counts_as_none() -> None:
    assert memory.sizing(32 * GiB, host_total=16 * GiB).limit_bytes is None


@pytest.mark.parametrize(
    "host, kubernetes, shared, connections",
    [
        # Spilo's rule without a limit: a quarter of the host (a fifth on Kubernetes),
        # one connection per 30 MiB, at least 100, at most 1000.
        (16 * GiB, False, "4096MB", 546),
        (16 * GiB, True, "3276MB", 546),
        (2 * GiB, False, "512MB", 100),
        (64 * GiB, False, "16384MB", 1000),
    ],
)
def test_no_limit_sizes_from_host_memory(host: int, kubernetes: bool, shared: str, connections: int) -> None:
    for limit in (None, 2 * host):  # no limit, or one above the machine's memory
        result = memory.sizing(limit, host_total=host, kubernetes=kubernetes)
        assert (result.limit_bytes, result.shared_buffers, result.max_connections) == (None, shared, connections)


def test_no_limit_and_unknown_host_memory_keeps_postgres_defaults() -> None:
    assert memory.sizing(None, host_total=None) == memory.MemorySizing(None, "128MB", 100)


def test_detect_reads_both(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text(str(GiB))
    (tmp_path / "meminfo").write_text("MemTotal:       16000000 kB\n")
    assert memory.detect(tmp_path, tmp_path).shared_buffers == "256MB"
