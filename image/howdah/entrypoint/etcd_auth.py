"""`howdah-entrypoint etcd-auth`: turn etcd's v3 authentication on, once, for the agents.

A one-shot step (docker-compose.yml's ``etcd-auth`` service) run after etcd starts and before
the nodes do.  From the environment:

* ``ETCD3_HOST`` (``host:port``; ``ETCD3_PROTOCOL`` http or https, ``ETCD3_CACERT``): the etcd;
* ``ETCD_ROOT_PASSWORD``: etcd's ``root`` user (required: auth cannot be on without it);
* ``ETCD3_USERNAME`` / ``ETCD3_PASSWORD``: the agents' user, the same variables the nodes read;
* ``NAMESPACE`` (default ``/service/``): the key prefix that user may read and write.

Idempotent: on a fresh etcd it adds ``root``, the agents' role (read-write on the prefix and
nothing else) and user, then enables auth; where auth is on already it logs in as root and
makes sure the role, the grant and the agents' password are the configured ones (so a changed
``ETCD3_PASSWORD`` rotates the user's password).  Anonymous requests fail once auth is on.
Waits up to ``ETCD_AUTH_WAIT`` seconds (default 120) for etcd to answer; exits 0 when done,
1 (one line) when etcd refuses, 2 on a bad variable.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import sys
import time
from typing import Any, Mapping

from . import values
from .errors import EnvError
from .values import Env, get

class EtcdRefused(Exception):
    """etcd answered with an error we cannot go past."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def prefix_range(prefix: str) -> tuple[str, str]:
    """etcd's (key, range_end) for every key starting with prefix, base64 as the gateway takes them."""
    raw = prefix.encode()
    return _b64(raw), _b64(raw[:-1] + bytes([raw[-1] + 1]))


class Gateway:
    """etcd's JSON gateway (/v3/...) at one host:port."""

    def __init__(self, host: str, port: int, protocol: str = "http", cacert: str = "",
                 timeout: float = 10.0) -> None:
        self.host, self.port, self.protocol, self.timeout = host, port, protocol, timeout
        self.context: ssl.SSLContext | None = None
        if protocol == "https":
            self.context = ssl.create_default_context(cafile=cacert or None)
        self.token: str | None = None

    def call(self, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.context is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        try:
            conn.request("POST", path, body=json.dumps(body), headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"error": raw[:200].decode(errors="replace")}
        return resp.status, data if isinstance(data, dict) else {}


def _error(data: Mapping[str, Any]) -> str:
    return str(data.get("error") or data.get("message") or data)


def _must(gw: Gateway, path: str, body: Mapping[str, Any], tolerate: tuple[str, ...] = ()) -> None:
    code, data = gw.call(path, body)
    if code == 200 or any(t in _error(data) for t in tolerate):
        return
    raise EtcdRefused(f"{path}: {code} {_error(data)}")


def _login(gw: Gateway, password: str) -> bool:
    """Log in as root: True with a token; False when auth is not enabled yet."""
    code, data = gw.call("/v3/auth/authenticate", {"name": "root", "password": password})
    if code == 200 and data.get("token"):
        gw.token = str(data["token"])
        return True
    if "authentication is not enabled" in _error(data):
        return False
    raise EtcdRefused(f"root login: {code} {_error(data)} (is ETCD_ROOT_PASSWORD the password etcd has?)")


def ensure(gw: Gateway, root_password: str, user: str, password: str, prefix: str) -> str:
    """Auth on with root and the agents' user; returns what was done."""
    enabled = _login(gw, root_password)
    exists = ("already exists",)
    if not enabled:
        _must(gw, "/v3/auth/user/add", {"name": "root", "password": root_password}, exists)
        _must(gw, "/v3/auth/role/add", {"name": "root"}, exists)
        _must(gw, "/v3/auth/user/grant", {"user": "root", "role": "root"})
    key, range_end = prefix_range(prefix)
    _must(gw, "/v3/auth/role/add", {"name": user}, exists)
    _must(gw, "/v3/auth/role/grant", {"name": user, "perm": {"permType": "READWRITE", "key": key,
                                                             "range_end": range_end}})
    code, data = gw.call("/v3/auth/user/add", {"name": user, "password": password})
    if code != 200:
        if "already exists" not in _error(data):
            raise EtcdRefused(f"/v3/auth/user/add: {code} {_error(data)}")
        _must(gw, "/v3/auth/user/changepw", {"name": user, "password": password})
    _must(gw, "/v3/auth/user/grant", {"user": user, "role": user})
    if not enabled:
        _must(gw, "/v3/auth/enable", {})
        return f"authentication enabled: root and {user!r} (read-write on {prefix})"
    return f"authentication already on: {user!r} has read-write on {prefix}"


def load(env: Env) -> tuple[Gateway, str, str, str, str]:
    host = get(env, "ETCD3_HOST")
    if not host:
        raise EnvError("ETCD3_HOST", "not set", "set it to the etcd to secure, as host:port")
    name, port = values.host_port("ETCD3_HOST", host).rsplit(":", 1)
    protocol = get(env, "ETCD3_PROTOCOL", "http")
    if protocol not in ("http", "https"):
        raise EnvError("ETCD3_PROTOCOL", f"{protocol!r} is not http or https", "set it to http or https")
    root = get(env, "ETCD_ROOT_PASSWORD")
    if not root:
        raise EnvError("ETCD_ROOT_PASSWORD", "not set", "set the password etcd's root user gets (or has)")
    user, password = get(env, "ETCD3_USERNAME"), get(env, "ETCD3_PASSWORD")
    if not user or not password:
        missing = "ETCD3_PASSWORD" if user else "ETCD3_USERNAME"
        raise EnvError(missing, "not set", "set ETCD3_USERNAME and ETCD3_PASSWORD: the agents' etcd user")
    if user == "root":
        raise EnvError("ETCD3_USERNAME", "is root", "give the agents a user of their own, not etcd's root")
    prefix = get(env, "NAMESPACE", "/service/")
    prefix = prefix if prefix.startswith("/") else "/" + prefix
    gw = Gateway(name.strip("[]"), int(port), protocol, get(env, "ETCD3_CACERT"))
    return gw, root, user, password, prefix


def main(env: Env | None = None) -> int:
    env = dict(os.environ) if env is None else env
    try:
        gw, root, user, password, prefix = load(env)
        wait = float(get(env, "ETCD_AUTH_WAIT", "120") or 120)
    except (EnvError, ValueError) as exc:
        line = exc.line() if isinstance(exc, EnvError) else f"howdah-entrypoint: invalid ETCD_AUTH_WAIT: {exc}"
        print(line, file=sys.stderr, flush=True)
        return 2
    deadline = time.monotonic() + wait
    while True:
        try:
            done = ensure(gw, root, user, password, prefix)
            print(f"etcd-auth: {done}", flush=True)
            return 0
        except EtcdRefused as exc:
            print(f"etcd-auth: etcd refused {exc}", file=sys.stderr, flush=True)
            return 1
        except (OSError, http.client.HTTPException) as exc:
            gw.token = None
            if time.monotonic() > deadline:
                print(f"etcd-auth: etcd at {gw.host}:{gw.port} did not answer within {wait:.0f} s ({exc})",
                      file=sys.stderr, flush=True)
                return 1
            time.sleep(1)
