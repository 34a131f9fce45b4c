"""Custom bootstrap and replica creation methods (CONTRACT §4, seeds chapter 9)."""
from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Mapping

from howdah.core.models import truthy

log = logging.getLogger(__name__)

# Keys of a method section that steer the agent and are never passed on.
SPECIAL = {"command", "keep_data", "no_params", "no_master", "no_leader",
           "keep_existing_recovery_conf", "recovery_conf"}
# Keys of a bootstrap method section that are not passed on as --key=value
# (Patroni's rule: every other key is, with no_params too).
BOOTSTRAP_SPECIAL = {"command", "no_params", "keep_existing_recovery_conf", "recovery_conf",
                     "scope", "datadir"}


class MethodError(ValueError):
    pass


class OptionError(ValueError):
    pass


def long_options(spec: Any, field: str, allow_map: bool) -> list[str]:
    """Long options given as a list of flags and one-key maps (or, where
    `allow_map`, as one map): ["verbose", {"max-rate": "100M"}] ->
    ["--verbose", "--max-rate=100M"]."""
    if not spec:
        return []
    if isinstance(spec, Mapping) and allow_map:
        items: list[Any] = [{k: v} for k, v in spec.items()]
    elif isinstance(spec, list):
        items = spec
    else:
        kinds = "a map or a list" if allow_map else "a list of options or one-key maps"
        raise OptionError(f"{field} must be {kinds}")
    args = []
    for item in items:
        if isinstance(item, str):
            args.append(f"--{item.lstrip('-')}")
        elif isinstance(item, Mapping) and len(item) == 1:
            (k, v), = item.items()
            args.append(f"--{str(k).lstrip('-')}={v}")
        else:
            raise OptionError(f"{field}: {item!r} is neither a flag nor a one-key map")
    return args


def resolve_command(command: str) -> list[str]:
    """The command as argv; a relative path is taken from the agent's own directory."""
    argv = shlex.split(command)
    if not argv:
        raise MethodError("empty command")
    exe = argv[0]
    if os.sep in exe and not os.path.isabs(exe):
        base = Path(sys.argv[0]).resolve().parent if sys.argv and sys.argv[0] else Path.cwd()
        argv[0] = str(base / exe)
    return argv


def section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = cfg.get(name)
    return value if isinstance(value, Mapping) else {}


def bootstrap_argv(method: str, spec: Mapping[str, Any], scope: str, datadir: Path) -> list[str]:
    if not spec.get("command"):
        raise MethodError(f"bootstrap.{method}.command is required for bootstrap.method {method}")
    argv = resolve_command(str(spec["command"]))
    if not truthy(spec.get("no_params")):
        argv += [f"--scope={scope}", f"--datadir={datadir}"]
    # the method's own keys, as Patroni passes them (no_params leaves only these)
    argv += [f"--{k}={v}" for k, v in spec.items() if k not in BOOTSTRAP_SPECIAL]
    return argv


def replica_argv(method: str, spec: Mapping[str, Any], scope: str, datadir: Path,
                 connstring: str) -> list[str]:
    if not spec.get("command"):
        raise MethodError(f"postgresql.{method}.command is required to create replicas with it")
    argv = resolve_command(str(spec["command"]))
    if truthy(spec.get("no_params")):
        return argv
    argv += [f"--scope={scope}", "--role=replica", f"--datadir={datadir}",
             f"--connstring={connstring}"]
    argv += [f"--{k}={v}" for k, v in spec.items() if k not in SPECIAL]
    return argv


def method_names(pg_cfg: Mapping[str, Any], standby: Mapping[str, Any] | None = None) -> list[str]:
    """Replica creation methods in order; `basebackup` when none are listed."""
    raw = (standby or {}).get("create_replica_methods") or pg_cfg.get("create_replica_methods")
    if not raw:
        return ["basebackup"]
    if isinstance(raw, str):
        raw = [raw]
    return [str(m) for m in raw]


def without_leader(pg_cfg: Mapping[str, Any], names: list[str]) -> bool:
    """Whether some method may run with no leader (`no_master` / `no_leader`)."""
    for name in names:
        spec = section(pg_cfg, name)
        if truthy(spec.get("no_master")) or truthy(spec.get("no_leader")):
            return True
    return False
