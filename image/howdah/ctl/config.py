"""The agent's YAML as howdahctl needs it: scope, namespace, DCS, REST API, credentials.

The file and the PATRONI_* environment overrides are the agent's own
(howdah.config.load); howdahctl checks only the parts it uses, so a
patronictl-style file with just `scope` and `etcd` works too.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from howdah.config.load import KNOWN_DCS, SUPPORTED_DCS, ConfigError, apply_env, load
from howdah.dcs import HOST_BACKENDS

from .errors import CtlError

ENV_PATHS = ("HOWDAH_CONFIG", "PATRONICTL_CONFIG_FILE", "PATRONI_CONFIGURATION_FILE")
USER_DEFAULT = Path("~/.config/patroni/patronictl.yaml")


IMAGE_RUN_DIR = "/run/howdah"  # howdah.entrypoint.settings.DEFAULT_RUN_DIR (a test keeps them equal)


def image_default(env: Mapping[str, str]) -> Path:
    """The file the container entrypoint renders for the agent."""
    return Path(env.get("HOWDAH_RUN_DIR") or IMAGE_RUN_DIR) / "howdah.yml"


@dataclass(frozen=True)
class CtlConfig:
    scope: str
    namespace: str
    dcs: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict)
    dcs_kind: str = "etcd"

    def section(self, key: str) -> Mapping[str, Any]:
        value = self.raw.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def superuser(self) -> Mapping[str, Any]:
        auth = self.section("postgresql").get("authentication") or {}
        su = auth.get("superuser") if isinstance(auth, dict) else None
        return su if isinstance(su, dict) else {}

    @property
    def api_auth(self) -> tuple[str, str] | None:
        """Basic auth: ctl.authentication, else restapi.authentication."""
        for key in ("ctl", "restapi"):
            auth = self.section(key).get("authentication")
            if isinstance(auth, dict) and auth.get("username"):
                return str(auth["username"]), str(auth.get("password") or "")
        return None


def config_path(given: str | None, env: Mapping[str, str]) -> str | None:
    """-c, else $HOWDAH_CONFIG / $PATRONICTL_CONFIG_FILE / $PATRONI_CONFIGURATION_FILE,
    else ~/.config/patroni/patronictl.yaml, else the container's rendered howdah.yml,
    if present; else None (environment only)."""
    if given:
        return given
    for var in ENV_PATHS:
        if env.get(var):
            return env[var]
    for default in (USER_DEFAULT.expanduser(), image_default(env)):
        if default.is_file():
            return str(default)
    return None


def read_tree(path: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    tree: Any = {}
    if path is not None:
        try:
            tree = yaml.safe_load(Path(path).read_text()) or {}  # checked below
        except OSError as exc:
            raise CtlError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise CtlError(f"config file {path} is not valid YAML{where}") from None
        if not isinstance(tree, dict):
            raise CtlError(f"config file {path} must hold a YAML mapping")
    apply_env(tree, env)
    result: dict[str, Any] = tree
    return result


def load_ctl_config(path: str | None, env: Mapping[str, str] | None = None,
                    scope: str | None = None) -> CtlConfig:
    env = os.environ if env is None else env
    path = config_path(path, env)
    tree = read_tree(path, env)
    if scope:
        tree["scope"] = scope
    if path is not None and "postgresql" in tree:
        try:  # a full agent file: validate it exactly as the agent would
            load(path, {**env, **({"PATRONI_SCOPE": scope} if scope else {})})
        except ConfigError as exc:
            raise CtlError(f"config: {exc}") from None
    if not str(tree.get("scope") or "").strip():
        where = path or "no config file (use -c, or set HOWDAH_CONFIG)"
        raise CtlError(f"config: scope is not set ({where}); set `scope:` or PATRONI_SCOPE")
    kind = next((k for k in KNOWN_DCS if k in tree), None)
    if kind is None:
        raise CtlError("config: no DCS configured: add an `etcd:` section with `host` or `hosts`")
    if kind not in SUPPORTED_DCS:
        raise CtlError(f"config: DCS {kind!r} is not supported; use "
                       + " or ".join(f"`{k}`" for k in SUPPORTED_DCS))
    dcs = tree.get(kind)
    if kind in HOST_BACKENDS and (not isinstance(dcs, dict) or not (
            dcs.get("host") or dcs.get("hosts") or dcs.get("url"))):
        raise CtlError(f"config: {kind}: set `host`, `hosts` or `url`, e.g. host: 127.0.0.1:2379")
    return CtlConfig(scope=str(tree["scope"]), namespace=str(tree.get("namespace") or "/service/"),
                     dcs=dcs if isinstance(dcs, dict) else {}, raw=tree, dcs_kind=kind)
