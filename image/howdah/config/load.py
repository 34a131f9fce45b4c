"""The agent's YAML file plus PATRONI_* environment overrides, validated."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from howdah.config.tls import TlsConfigError
from howdah.config.tls import check_config as check_tls
from howdah.core.settings import SettingsError, build_settings, check_parameters

from howdah.dcs import BACKENDS, HOST_BACKENDS, UNSUPPORTED

SUPPORTED_DCS = tuple(BACKENDS)
# the first section present picks the DCS (Patroni's order: etcd before etcd3)
KNOWN_DCS = tuple(dict.fromkeys(("etcd", "etcd3", "kubernetes", *BACKENDS, *UNSUPPORTED)))


def auth_pair(restapi: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(username, password) of ``restapi.authentication``, (None, None) when absent.

    A username without a password (or the reverse) raises ValueError: silently
    running without authentication would be the worst reading of it.
    """
    auth = restapi.get("authentication")
    if auth is None or auth == "":
        return None, None
    if not isinstance(auth, Mapping):
        raise ValueError("restapi.authentication: must be a mapping with username and password")
    user, password = auth.get("username"), auth.get("password")
    user = None if user is None or str(user) == "" else str(user)
    password = None if password is None or str(password) == "" else str(password)
    if user is None and password is None:
        return None, None
    if user is None:
        raise ValueError("restapi.authentication.username: a password is set but no username; "
                         "set both (PATRONI_RESTAPI_USERNAME and PATRONI_RESTAPI_PASSWORD) or neither")
    if password is None:
        raise ValueError("restapi.authentication.password: a username is set but no password; "
                         "set both (PATRONI_RESTAPI_USERNAME and PATRONI_RESTAPI_PASSWORD) or neither")
    return user, password


class ConfigError(ValueError):
    """One line naming the field and the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# (environment variable, path in the config)
ENV_MAP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PATRONI_NAME", ("name",)),
    ("PATRONI_SCOPE", ("scope",)),
    ("PATRONI_NAMESPACE", ("namespace",)),
    ("PATRONI_RESTAPI_LISTEN", ("restapi", "listen")),
    ("PATRONI_RESTAPI_CONNECT_ADDRESS", ("restapi", "connect_address")),
    ("PATRONI_RESTAPI_USERNAME", ("restapi", "authentication", "username")),
    ("PATRONI_RESTAPI_PASSWORD", ("restapi", "authentication", "password")),
    ("PATRONI_RESTAPI_CERTFILE", ("restapi", "certfile")),
    ("PATRONI_RESTAPI_KEYFILE", ("restapi", "keyfile")),
    ("PATRONI_RESTAPI_CAFILE", ("restapi", "cafile")),
    ("PATRONI_RESTAPI_KEYFILE_PASSWORD", ("restapi", "keyfile_password")),
    ("PATRONI_RESTAPI_CIPHERS", ("restapi", "ciphers")),
    ("PATRONI_RESTAPI_VERIFY_CLIENT", ("restapi", "verify_client")),
    ("PATRONI_CTL_INSECURE", ("ctl", "insecure")),
    ("PATRONI_CTL_CACERT", ("ctl", "cacert")),
    ("PATRONI_CTL_CERTFILE", ("ctl", "certfile")),
    ("PATRONI_CTL_KEYFILE", ("ctl", "keyfile")),
    ("PATRONI_CTL_KEYFILE_PASSWORD", ("ctl", "keyfile_password")),
    ("PATRONI_ETCD_HOST", ("etcd", "host")),
    ("PATRONI_ETCD_HOSTS", ("etcd", "hosts")),
    ("PATRONI_ETCD_URL", ("etcd", "url")),
    ("PATRONI_ETCD_PROTOCOL", ("etcd", "protocol")),
    ("PATRONI_ETCD_USERNAME", ("etcd", "username")),
    ("PATRONI_ETCD_PASSWORD", ("etcd", "password")),
    ("PATRONI_ETCD_CACERT", ("etcd", "cacert")),
    ("PATRONI_ETCD_CERT", ("etcd", "cert")),
    ("PATRONI_ETCD_KEY", ("etcd", "key")),
    ("PATRONI_ETCD_PROXY", ("etcd", "proxy")),
    ("PATRONI_ETCD_SRV", ("etcd", "srv")),
    ("PATRONI_ETCD_SRV_SUFFIX", ("etcd", "srv_suffix")),
    ("PATRONI_ETCD3_HOST", ("etcd3", "host")),
    ("PATRONI_ETCD3_HOSTS", ("etcd3", "hosts")),
    ("PATRONI_ETCD3_URL", ("etcd3", "url")),
    ("PATRONI_ETCD3_PROXY", ("etcd3", "proxy")),
    ("PATRONI_ETCD3_PROTOCOL", ("etcd3", "protocol")),
    ("PATRONI_ETCD3_USERNAME", ("etcd3", "username")),
    ("PATRONI_ETCD3_PASSWORD", ("etcd3", "password")),
    ("PATRONI_ETCD3_CACERT", ("etcd3", "cacert")),
    ("PATRONI_ETCD3_CERT", ("etcd3", "cert")),
    ("PATRONI_ETCD3_KEY", ("etcd3", "key")),
    ("PATRONI_ETCD3_SRV", ("etcd3", "srv")),
    ("PATRONI_ETCD3_SRV_SUFFIX", ("etcd3", "srv_suffix")),
    *((f"PATRONI_KUBERNETES_{key.upper()}", ("kubernetes", key)) for key in (
        "namespace", "labels", "scope_label", "role_label", "leader_label_value", "follower_label_value",
        "standby_leader_label_value", "tmp_role_label", "use_endpoints", "pod_ip", "ports",
        "bypass_api_service", "cacert")),
    ("PATRONI_POSTGRESQL_LISTEN", ("postgresql", "listen")),
    ("PATRONI_POSTGRESQL_CONNECT_ADDRESS", ("postgresql", "connect_address")),
    ("PATRONI_POSTGRESQL_DATA_DIR", ("postgresql", "data_dir")),
    ("PATRONI_POSTGRESQL_BIN_DIR", ("postgresql", "bin_dir")),
    ("PATRONI_POSTGRESQL_PGPASS", ("postgresql", "pgpass")),
    ("PATRONI_SUPERUSER_USERNAME", ("postgresql", "authentication", "superuser", "username")),
    ("PATRONI_SUPERUSER_PASSWORD", ("postgresql", "authentication", "superuser", "password")),
    ("PATRONI_REPLICATION_USERNAME", ("postgresql", "authentication", "replication", "username")),
    ("PATRONI_REPLICATION_PASSWORD", ("postgresql", "authentication", "replication", "password")),
    ("PATRONI_REWIND_USERNAME", ("postgresql", "authentication", "rewind", "username")),
    ("PATRONI_REWIND_PASSWORD", ("postgresql", "authentication", "rewind", "password")),
)


@dataclass(frozen=True)
class AgentConfig:
    raw: Mapping[str, Any]
    name: str
    scope: str
    namespace: str
    dcs_kind: str
    dcs: Mapping[str, Any]
    restapi: Mapping[str, Any]
    postgresql: Mapping[str, Any]
    bootstrap: Mapping[str, Any]
    tags: Mapping[str, Any]

    @property
    def data_dir(self) -> Path:
        return Path(str(self.postgresql["data_dir"]))

    @property
    def bin_dir(self) -> Path:
        return Path(str(self.postgresql.get("bin_dir") or "/usr/lib/postgresql/15/bin"))


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def apply_env(tree: dict[str, Any], env: Mapping[str, str]) -> None:
    for section in UNSUPPORTED:
        prefix = f"PATRONI_{section.upper()}_"
        for var in sorted(env):
            if var.startswith(prefix) and env[var] != "":
                raise ConfigError(var, f"DCS {section!r} is not supported; use "
                                  + " or ".join(f"`{k}`" for k in SUPPORTED_DCS))
    for var, path in ENV_MAP:
        if var in env and env[var] != "":
            _set(tree, path, env[var])
    for section in ("etcd", "etcd3"):
        if env.get(f"PATRONI_{section.upper()}_HOSTS"):
            tree.setdefault(section, {}).pop("host", None)


def check_listen(field: str, value: Any, required: bool = True) -> None:
    if value in (None, ""):
        if required:
            raise ConfigError(field, "is required, e.g. 0.0.0.0:8008")
        return
    host, sep, port = str(value).rpartition(":")
    if not sep:
        raise ConfigError(field, f"{value!r} must be host:port, e.g. 0.0.0.0:{port or 8008}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(field, f"port {port!r} in {value!r} must be a number from 1 to 65535")


def _section(tree: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = tree.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a mapping, got {type(value).__name__}")
    return value


def validate(tree: dict[str, Any]) -> AgentConfig:
    for key in ("scope", "name"):
        if not isinstance(tree.get(key), (str, int)) or str(tree.get(key)).strip() == "":
            raise ConfigError(key, f"is required: set `{key}:` in the YAML or PATRONI_{key.upper()}")
    present = [k for k in KNOWN_DCS if k in tree]
    if not present:
        raise ConfigError("etcd", "no DCS configured: add an `etcd:` section with `host` or `hosts`")
    kind = present[0]
    if kind not in SUPPORTED_DCS:
        raise ConfigError(kind, f"DCS {kind!r} is not supported; use "
                          + " or ".join(f"`{k}`" for k in SUPPORTED_DCS))
    dcs = _section(tree, kind)
    if kind in HOST_BACKENDS and not any(dcs.get(k) for k in ("host", "hosts", "url", "proxy", "srv")):
        raise ConfigError(f"{kind}.host", "set `host`, `hosts`, `url`, `proxy` or `srv`, e.g. host: 127.0.0.1:2379")
    for key in ("host",):
        if dcs.get(key):
            check_listen(f"{kind}.{key}", dcs[key])
    restapi = _section(tree, "restapi")
    check_listen("restapi.listen", restapi.get("listen"))
    check_listen("restapi.connect_address", restapi.get("connect_address"), required=False)
    try:
        check_tls(restapi, _section(tree, "ctl"))
    except TlsConfigError as exc:
        raise ConfigError(exc.field, str(exc).split(": ", 1)[1]) from None
    try:
        auth_pair(restapi)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise ConfigError(field, message) from None
    pg = _section(tree, "postgresql")
    check_listen("postgresql.listen", str(pg.get("listen", "")).split(",")[-1] or None)
    check_listen("postgresql.connect_address", pg.get("connect_address"), required=False)
    if not pg.get("data_dir"):
        raise ConfigError("postgresql.data_dir", "is required, e.g. /home/postgres/pgdata")
    auth = pg.get("authentication") or {}
    for role in ("superuser", "replication"):
        if not isinstance(auth.get(role), dict) or not auth[role].get("username"):
            raise ConfigError(f"postgresql.authentication.{role}.username",
                              "is required (and a password unless pg_hba trusts it)")
    try:
        check_parameters(pg.get("parameters"))
    except SettingsError as exc:
        raise ConfigError(exc.field, str(exc).split(": ", 1)[1]) from None
    bootstrap = _section(tree, "bootstrap")
    dcs_cfg = bootstrap.get("dcs") or {}
    if not isinstance(dcs_cfg, dict):
        raise ConfigError("bootstrap.dcs", "must be a mapping")
    try:
        build_settings(dcs_cfg, pg)
    except SettingsError as exc:
        raise ConfigError(f"bootstrap.dcs.{exc.field}", str(exc).split(": ", 1)[1]) from None
    method = bootstrap.get("method")
    if method and method != "initdb":
        spec = bootstrap.get(str(method))
        if not isinstance(spec, dict) or not spec.get("command"):
            raise ConfigError(f"bootstrap.{method}.command",
                              f"bootstrap.method is {method!r}: give bootstrap.{method}.command, "
                              "or use method: initdb")
    names = pg.get("create_replica_methods") or []
    for name in names if isinstance(names, list) else [names]:
        if name != "basebackup" and not (isinstance(pg.get(name), dict) and pg[name].get("command")):
            raise ConfigError(f"postgresql.{name}.command",
                              f"create_replica_methods lists {name!r}: give postgresql.{name}.command")
    tags = _section(tree, "tags")
    return AgentConfig(
        raw=tree, name=str(tree["name"]), scope=str(tree["scope"]),
        namespace=str(tree.get("namespace") or "/service/"), dcs_kind=kind, dcs=dcs,
        restapi=restapi, postgresql=pg, bootstrap=bootstrap, tags=tags,
    )


def load(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> AgentConfig:
    env = os.environ if env is None else env
    tree: Any = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError("config file", f"cannot read {path}: {exc.strerror}") from None
        try:
            tree = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError("config file", f"{path} is not valid YAML{where}") from None
        if not isinstance(tree, dict):
            raise ConfigError("config file", f"{path} must hold a YAML mapping")
    apply_env(tree, env)
    return validate(tree)
