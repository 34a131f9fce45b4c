"""Parsers for single environment values; each raises EnvError naming the variable."""
from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import urlsplit

import yaml

from .errors import EnvError

Env = Mapping[str, str]

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}
_HOST = re.compile(r"^[A-Za-z0-9_.\-]+$|^\[[0-9A-Fa-f:.]+\]$")
HOST = re.compile(r"^[A-Za-z0-9_.\-]+$|^\[?[0-9A-Fa-f:.]+\]?$")
LOCALE = re.compile(r"^[A-Za-z0-9_@.\-]+$")


# Characters that end a line in one of the files values are rendered into (postgresql.conf,
# pgbouncer.ini, supervisord.conf, pgbackrest.conf, haproxy.cfg, YAML) or that C code stops at.
_LINE_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
# Variables whose value is legitimately several lines, each written as a whole file of its own
# (PEM content, Spilo's userlist.txt text, a crontab).
MULTILINE = frozenset({"SSL_CERTIFICATE", "SSL_PRIVATE_KEY", "SSL_CA", "SSL_CRL", "SSL_RESTAPI_CA",
                       "SSL_RESTAPI_CERTIFICATE", "SSL_RESTAPI_PRIVATE_KEY", "PGBOUNCER_AUTHENTICATION",
                       "PGBOUNCER_AUTH", "CRONTAB"})


def single_line(name: str, value: str) -> str:
    """``value`` unless it holds a line break or another control character."""
    match = _LINE_BREAKING.search(value)
    if match:
        raise EnvError(name, f"holds a control character ({match.group()!r}) that would break out of its line "
                       "in a rendered config file", "remove line breaks and control characters from the value")
    return value


def get(env: Env, name: str, default: str = "") -> str:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    value = value.strip()
    return value if name in MULTILINE else single_line(name, value)


def port(env: Env, name: str, default: int) -> int:
    raw = get(env, name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise EnvError(name, f"{raw!r} is not a port number", "set it to an integer from 1 to 65535")
    return int(raw)


def boolean(env: Env, name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise EnvError(name, f"{raw!r} is not a boolean", "use true or false")


def integer(env: Env, name: str, default: int, minimum: int = 0) -> int:
    raw = get(env, name, str(default))
    if not raw.isdigit() or int(raw) < minimum:
        raise EnvError(name, f"{raw!r} is not a whole number >= {minimum}", f"set it to an integer >= {minimum}")
    return int(raw)


def host_port(name: str, raw: str, default_port: int = 2379) -> str:
    """'host' or 'host:port' -> 'host:port' (a scheme is tolerated and dropped)."""
    text = raw.strip().strip("'\"")
    if "://" in text:
        parts = urlsplit(text)
        if not parts.hostname:
            raise EnvError(name, f"{raw!r} has no host name", "write it as host:port, e.g. etcd:2379")
        text = parts.netloc
    if text.startswith("["):
        host, _, rest = text.partition("]")
        host, port_text = host + "]", rest[1:] if rest.startswith(":") else str(default_port)
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    else:
        host, port_text = text, str(default_port)
    if not host or not _HOST.match(host):
        raise EnvError(name, f"{raw!r} has no valid host name", "write it as host:port, e.g. etcd:2379")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise EnvError(name, f"{raw!r} has a bad port {port_text!r}", "write it as host:port with a numeric port, e.g. etcd:2379")
    return f"{host}:{port_text}"


def host_list(env: Env, name: str) -> list[str]:
    """'h1:2379,h2:2379', Spilo's quoted form "'h1:2379','h2:2379'", or a YAML list."""
    raw = get(env, name)
    items: list[Any]
    if raw.startswith("[") and raw.endswith("]"):
        try:
            loaded = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise EnvError(name, "not a valid YAML list", "write it as host1:2379,host2:2379") from None
        items = loaded if isinstance(loaded, list) else [raw]
    else:
        items = [part for part in raw.split(",") if part.strip()]
    if not items:
        raise EnvError(name, "lists no hosts", "write it as host1:2379,host2:2379")
    return [host_port(name, str(item)) for item in items]


def url(env: Env, name: str) -> str:
    raw = get(env, name)
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https"):
        raise EnvError(name, f"{raw!r} is not an http(s) URL", "write it as http://host:port, e.g. http://etcd:2379")
    try:
        port_value = parts.port
    except ValueError:
        raise EnvError(name, f"{raw!r} has a bad port", "write it as http://host:port with a numeric port") from None
    if not parts.hostname:
        raise EnvError(name, f"{raw!r} has no host", "write it as http://host:port, e.g. http://etcd:2379")
    del port_value
    return raw.rstrip("/")


def yaml_mapping(env: Env, name: str) -> dict[str, Any]:
    raw = env.get(name, "")
    if not raw.strip():
        return {}
    try:
        loaded = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise EnvError(name, f"YAML does not parse ({problem}{where})", "fix the YAML (check indentation and quoting)") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise EnvError(name, f"YAML is a {type(loaded).__name__}, not a mapping", "give a mapping such as 'postgresql: {parameters: {...}}'")
    return loaded


_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.\-]*[A-Za-z0-9])?$")


def cluster_name(name: str, value: str, limit: int) -> str:
    """SCOPE and member names: they become DCS key segments, file names and config values."""
    if len(value) > limit or not _NAME.match(value):
        raise EnvError(name, f"{value!r} is not a valid name",
                       f"use up to {limit} letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
    return value
