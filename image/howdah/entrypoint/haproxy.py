"""`howdah-entrypoint haproxy`: HAProxy routing to the primary and replicas of a cluster.

HAPROXY_NODES lists the members as ``host`` or ``host:pgport:apiport``, comma-separated
(default: howdah1,howdah2,howdah3 as in docker-compose.yml).  HAPROXY_PRIMARY_PORT (5000),
HAPROXY_REPLICA_PORT (5001) and HAPROXY_STATS_PORT (7000) choose the listening ports.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import values
from .errors import EnvError
from .render import environment
from .values import Env, get

_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Node:
    name: str
    host: str
    pgport: int
    apiport: int


@dataclass(frozen=True)
class HaproxySettings:
    nodes: list[Node]
    primary_port: int
    replica_port: int
    stats_port: int


def _node(item: str, pgport: int, apiport: int) -> Node:
    parts = item.strip().split(":")
    if len(parts) not in (1, 3) or not parts[0]:
        raise EnvError("HAPROXY_NODES", f"{item!r} is not host or host:pgport:apiport", "write e.g. howdah1,howdah2:5432:8008")
    if len(parts) == 3:
        pgport = values.port({"HAPROXY_NODES": parts[1]}, "HAPROXY_NODES", pgport)
        apiport = values.port({"HAPROXY_NODES": parts[2]}, "HAPROXY_NODES", apiport)
    return Node(_NAME.sub("_", parts[0]), parts[0], pgport, apiport)


def load(env: Env) -> HaproxySettings:
    pgport = values.port(env, "PGPORT", 5432)
    apiport = values.port(env, "APIPORT", 8008)
    raw = get(env, "HAPROXY_NODES", "howdah1,howdah2,howdah3")
    nodes = [_node(item, pgport, apiport) for item in raw.split(",") if item.strip()]
    if not nodes:
        raise EnvError("HAPROXY_NODES", "lists no nodes", "write e.g. howdah1,howdah2,howdah3")
    return HaproxySettings(
        nodes=nodes,
        primary_port=values.port(env, "HAPROXY_PRIMARY_PORT", 5000),
        replica_port=values.port(env, "HAPROXY_REPLICA_PORT", 5001),
        stats_port=values.port(env, "HAPROXY_STATS_PORT", 7000),
    )


def render(h: HaproxySettings, directory: Path | None = None) -> str:
    return environment(directory).get_template("haproxy.cfg.j2").render(h=h)
