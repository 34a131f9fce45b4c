"""Where an etcd section points: (protocol, [(host, port)]), as Patroni reads it."""
from __future__ import annotations

from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit


def parse_hosts(cfg: Mapping[str, Any]) -> tuple[str, list[tuple[str, int]]]:
    """(protocol, [(host, port)]) from an `etcd` or `etcd3` config section.

    `proxy` (an etcd gRPC proxy or load balancer) wins over `url`, which wins
    over `hosts`/`host`; a host may carry its own scheme (https://h:2379).
    """
    protocol = str(cfg.get("protocol") or "http")
    url = cfg.get("proxy") or cfg.get("url")
    if url:
        parts = urlsplit(str(url))
        return parts.scheme or protocol, [(parts.hostname or "", parts.port or 2379)]
    raw = cfg.get("hosts") or cfg.get("host") or "127.0.0.1:2379"
    items = raw if isinstance(raw, list) else str(raw).split(",")
    hosts = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if "://" in item:
            parts = urlsplit(item)
            protocol = parts.scheme
            hosts.append((parts.hostname or "", parts.port or 2379))
            continue
        host, _, port = item.rpartition(":")
        hosts.append((host or item, int(port) if host else 2379))
    return protocol, hosts


def url_credentials(cfg: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """username/password from the section, else from the url's user:password@."""
    user, password = cfg.get("username"), cfg.get("password")
    url = cfg.get("proxy") or cfg.get("url")
    if not user and url:
        parts = urlsplit(str(url))
        user, password = parts.username, parts.password
    return (str(user) if user else None), (str(password) if password is not None else None)


def hosts_desc(hosts: Sequence[tuple[str, int]]) -> str:
    return ",".join(f"{h}:{p}" for h, p in hosts)
