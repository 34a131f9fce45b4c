"""Patroni-format agent configuration and the command line for each agent kind."""
from __future__ import annotations

import copy
import functools
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("HARNESS_PG_BIN", "/usr/lib/postgresql/15/bin"))
HOWDAH_VENV = Path(os.environ.get("HARNESS_HOWDAH_VENV", REPO / ".venv"))
PATRONI_VENV = Path(os.environ.get("HARNESS_PATRONI_VENV", REPO / "bench" / ".venv-patroni"))
KINDS = ("howdah", "patroni")

SUPERUSER = ("postgres", "harness-super-pw")
REPLICATION = ("replicator", "harness-repl-pw")
REWIND = ("rewinder", "harness-rewind-pw")
# The agents refuse unsafe REST requests without restapi.authentication: every
# harness node has these (a test's extra may replace them).
API_AUTH = ("harness-api", "harness-api-pw")


@dataclass(frozen=True)
class Timing:
    ttl: int = 30
    loop_wait: int = 10
    retry_timeout: int = 10
    maximum_lag_on_failover: int = 1048576


@dataclass(frozen=True)
class NodeSpec:
    """Everything that differs between nodes of one cluster."""
    name: str
    scope: str
    workdir: Path
    pg_port: int
    api_port: int
    etcd_hosts: list[str]
    timing: Timing = Timing()
    tags: dict[str, Any] = field(default_factory=dict)
    namespace: str = "/service/"
    dcs: str = "etcd"  # the config section: etcd (v2 API) or etcd3


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """A new dict: extra's maps merge into base's recursively, other values
    (lists included) replace, and a None value removes the key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def agent_config(spec: NodeSpec, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The node's YAML config as a dict (Patroni 4 format), with extra merged in."""
    t = spec.timing
    host = "127.0.0.1"
    cfg: dict[str, Any] = {
        "name": spec.name,
        "scope": spec.scope,
        "namespace": spec.namespace,
        "log": {"level": "INFO"},
        "restapi": {"listen": f"{host}:{spec.api_port}",
                    "connect_address": f"{host}:{spec.api_port}",
                    "authentication": {"username": API_AUTH[0], "password": API_AUTH[1]}},
        spec.dcs: {"hosts": list(spec.etcd_hosts)},
        "bootstrap": {
            "dcs": {
                "ttl": t.ttl, "loop_wait": t.loop_wait, "retry_timeout": t.retry_timeout,
                "maximum_lag_on_failover": t.maximum_lag_on_failover,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {  # cluster-wide ones belong in the DCS
                        "max_connections": 50, "max_wal_senders": 10,
                        "max_replication_slots": 10, "wal_level": "replica",
                        "hot_standby": "on", "wal_log_hints": "on",
                        "max_worker_processes": 8,
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, "data-checksums"],
            "pg_hba": [
                "local all all trust",
                f"host replication {REPLICATION[0]} 127.0.0.1/32 md5",
                "host all all 127.0.0.1/32 md5",
            ],
        },
        "postgresql": {
            "listen": f"{host}:{spec.pg_port}",
            "connect_address": f"{host}:{spec.pg_port}",
            "data_dir": str(spec.workdir / "data"),
            "bin_dir": str(PG_BIN),
            "pgpass": str(spec.workdir / "pgpass"),
            "authentication": {
                "superuser": {"username": SUPERUSER[0], "password": SUPERUSER[1]},
                "replication": {"username": REPLICATION[0], "password": REPLICATION[1]},
                "rewind": {"username": REWIND[0], "password": REWIND[1]},
            },
            "parameters": {
                "unix_socket_directories": str(spec.workdir),
                "shared_buffers": "16MB", "wal_keep_size": "128MB",
                "min_wal_size": "32MB", "max_wal_size": "256MB",
                "logging_collector": "on", "log_directory": str(spec.workdir / "pglog"),
                "log_filename": "postgresql.log", "log_line_prefix": "%m [%p] ",
                "password_encryption": "scram-sha-256",
            },
        },
        "tags": dict(spec.tags),
    }
    return deep_merge(cfg, extra or {})


def agent_command(kind: str, config_path: Path) -> list[str]:
    """argv that runs one agent of the given kind on config_path."""
    if kind == "patroni":
        exe = PATRONI_VENV / "bin" / "patroni"
        if not exe.exists():
            raise FileNotFoundError(f"{exe} missing: run bench/setup.sh")
        return [str(exe), str(config_path)]
    if kind == "howdah":
        # `python -m howdah.main` is what the `howdah` console script runs (tests/unit/test_layers.py
        # checks pyproject's entry points), without depending on when the venv's script was written
        python = str(HOWDAH_VENV / "bin" / "python")
        if _runnable_as_postgres(python):
            return [python, "-m", "howdah.main", str(config_path)]
        return _howdah_via_system_python() + [str(config_path)]
    raise ValueError(f"unknown agent kind {kind!r}; expected one of {KINDS}")


@functools.lru_cache(maxsize=None)
def _runnable_as_postgres(python: str) -> bool:
    """Whether the postgres OS user can run this interpreter (a venv built on an
    interpreter under /root, mode 0700, cannot)."""
    if os.geteuid() != 0:
        return True
    try:
        res = subprocess.run([python, "-c", "pass"], user="postgres", group="postgres",
                             capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0


def _howdah_via_system_python() -> list[str]:
    """Run howdah.main:main with Debian's python3 and the venv's packages
    (same 3.11 ABI); used when the venv's own interpreter is unreachable."""
    site = sorted((HOWDAH_VENV / "lib").glob("python3*/site-packages"))
    code = ("import site, sys; [site.addsitedir(p) for p in sys.argv[1:2]]; "
            "sys.path.insert(0, sys.argv[2]); del sys.argv[1:3]; "
            "from howdah.main import main; sys.exit(main())")
    return ["/usr/bin/python3", "-c", code, str(site[-1]) if site else "",
            str(REPO / "image")]
