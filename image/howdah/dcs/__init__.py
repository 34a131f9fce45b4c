"""DCS backends behind one interface (dcs.base.Dcs), chosen from the config.

A backend is a class built as ``cls(section, namespace, scope, name,
request_timeout)`` from the config section of its name (``etcd:``,
``etcd3:``, ``kubernetes:``), as Patroni picks its DCS.  Adding a backend is
one entry in BACKENDS; this module imports a backend only when it is opened.
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping, Protocol

from howdah.dcs.base import Dcs

# config section -> "module:class"
BACKENDS: dict[str, str] = {
    "etcd": "howdah.dcs.etcd2:EtcdV2",
    "etcd3": "howdah.dcs.etcd3:Etcd3",
    "kubernetes": "howdah.dcs.kubernetes:Kubernetes",
}
# sections Patroni knows that Howdah does not implement (the config says so)
UNSUPPORTED = ("consul", "zookeeper", "exhibitor", "raft")
# sections whose backend needs host, hosts or url
HOST_BACKENDS = ("etcd", "etcd3")


class DcsConfig(Protocol):
    """What open_dcs needs (the agent's AgentConfig and howdahctl's CtlConfig have it)."""

    @property
    def dcs_kind(self) -> str: ...
    @property
    def dcs(self) -> Mapping[str, Any]: ...
    @property
    def namespace(self) -> str: ...
    @property
    def scope(self) -> str: ...


def backend_class(kind: str) -> Any:
    try:
        target = BACKENDS[kind]
    except KeyError:
        raise ValueError(f"DCS {kind!r} is not supported; use one of "
                         f"{', '.join(sorted(BACKENDS))}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def open_backend(kind: str, section: Mapping[str, Any], namespace: str, scope: str,
                 name: str, request_timeout: float = 2.0) -> Dcs:
    dcs: Dcs = backend_class(kind)(section, namespace, scope, name, request_timeout)
    return dcs


def open_dcs(config: DcsConfig, name: str | None = None, request_timeout: float = 2.0) -> Dcs:
    """The backend named by the config's DCS section, as member `name`
    (default: the config's own `name`)."""
    member = name if name is not None else str(getattr(config, "name", "howdahctl"))
    return open_backend(config.dcs_kind, config.dcs, config.namespace, config.scope,
                        member, request_timeout)
