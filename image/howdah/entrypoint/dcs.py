"""Which DCS the agent uses, from Spilo's variables.

* etcd v3: ``ETCD3_HOST`` / ``ETCD3_HOSTS`` / ``ETCD3_URL`` / ``ETCD3_PROXY`` /
  ``ETCD3_DISCOVERY_DOMAIN`` (plus ``ETCD3_PROTOCOL``, ``_USERNAME``/``_PASSWORD``,
  ``_CACERT``, ``_CERT``, ``_KEY``) -> an ``etcd3:`` section;
* etcd v2 API: the same names with ``ETCD_`` -> an ``etcd:`` section;
* ``DCS_ENABLE_KUBERNETES_API`` with ``KUBERNETES_*`` -> a ``kubernetes:`` section;
* none of them: a local etcd (v3 API only) started under supervisord for a single node.

Consul, ZooKeeper and Exhibitor (``CONSUL_*``, ``ZOOKEEPER_*``, ``EXHIBITOR_*``, or such a
section in SPILO_CONFIGURATION) are refused at start with one line: the container exits 2
instead of starting an agent that could never reach its DCS.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from . import values
from .errors import EnvError
from .values import Env, get

LOCAL_ETCD = "127.0.0.1:2379"
LOCAL_SECTION = "etcd3"  # the agent's section for the container's own etcd
# env prefix -> agent config section
FAMILIES = (("ETCD3", "etcd3"), ("ETCD", "etcd"))
LOCATIONS = ("HOST", "HOSTS", "URL", "PROXY", "DISCOVERY_DOMAIN")
OPTIONS = (("PROTOCOL", "protocol"), ("USERNAME", "username"), ("PASSWORD", "password"),
           ("CACERT", "cacert"), ("CERT", "cert"), ("KEY", "key"))
# DCS Patroni (and Spilo) know that Howdah does not implement: env prefix, config section, label
UNSUPPORTED = (("CONSUL", "consul", "Consul"), ("ZOOKEEPER", "zookeeper", "ZooKeeper"),
               ("EXHIBITOR", "exhibitor", "Exhibitor"), ("RAFT", "raft", "Patroni's Raft"))
SUPPORTED_HINT = "use etcd (ETCD3_HOSTS=h1:2379,h2:2379) or the Kubernetes API (DCS_ENABLE_KUBERNETES_API=true)"
# Spilo's Kubernetes defaults (Patroni's own are role/primary; Spilo keeps spilo-role/master)
KUBERNETES_DEFAULTS = {
    "role_label": "spilo-role",
    "scope_label": "version",
    "leader_label_value": "master",
    "follower_label_value": "replica",
    "standby_leader_label_value": "master",
}
KUBERNETES_DEFAULT_LABELS = {"application": "spilo"}

@dataclass(frozen=True)
class Dcs:
    kind: str  # "etcd" | "etcd3" | "local" | "kubernetes"
    etcd: dict[str, Any] = field(default_factory=dict)
    kubernetes: dict[str, Any] = field(default_factory=dict)

    @property
    def section_name(self) -> str:
        return LOCAL_SECTION if self.kind == "local" else self.kind

    def section(self) -> dict[str, Any]:
        """The agent YAML's DCS section: {"etcd3": {...}}, {"etcd": {...}} or {"kubernetes": {...}}."""
        if self.kind == "kubernetes":
            return {"kubernetes": dict(self.kubernetes)}
        return {self.section_name: dict(self.etcd)}


def refuse_unsupported(env: Env, overlays: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> None:
    """One EnvError for the first Consul/ZooKeeper/Exhibitor/Raft setting found."""
    for prefix, section, label in UNSUPPORTED:
        for name in sorted(env):
            spilo = prefix != "RAFT" and name.startswith(prefix + "_")
            if (spilo or name.startswith(f"PATRONI_{prefix}_")) and get(env, name):
                raise EnvError(name, f"{label} is not supported as DCS by Howdah", SUPPORTED_HINT)
        for variable, overlay in overlays:
            if section in overlay:
                raise EnvError(variable, f"has a `{section}:` section, but {label} is not supported as DCS by Howdah",
                               "remove it and " + SUPPORTED_HINT)


def _family(env: Env, prefix: str) -> dict[str, Any] | None:
    given = [f"{prefix}_{n}" for n in LOCATIONS if get(env, f"{prefix}_{n}")]
    if len(given) > 1:
        raise EnvError(given[1], f"set together with {given[0]}", f"set only one of {', '.join(given)}")
    if not given:
        return None
    name = given[0]
    conf: dict[str, Any]
    if name.endswith("_HOSTS"):
        conf = {"hosts": values.host_list(env, name)}
    elif name.endswith("_HOST"):
        conf = {"host": values.host_port(name, get(env, name))}
    elif name.endswith("_URL"):
        conf = {"url": values.url(env, name)}
    elif name.endswith("_PROXY"):
        conf = {"proxy": values.url(env, name)}
    else:
        # Patroni's `srv`: the agent looks the SRV records up itself, at start and again
        # whenever no etcd host it knows answers (howdah/dcs/srv.py)
        domain = get(env, name).strip().rstrip(".")
        if not domain or "/" in domain or ":" in domain:
            raise EnvError(name, f"{get(env, name)!r} is not a DNS domain", "write e.g. example.com")
        conf = {"srv": domain}
    protocol = get(env, f"{prefix}_PROTOCOL")
    if protocol:
        if protocol not in ("http", "https"):
            raise EnvError(f"{prefix}_PROTOCOL", f"{protocol!r} is not http or https", "set it to http or https")
        conf["protocol"] = protocol
    for suffix, key in OPTIONS[1:]:
        if get(env, f"{prefix}_{suffix}"):
            conf[key] = get(env, f"{prefix}_{suffix}")
    if bool(conf.get("username")) != bool(conf.get("password")):
        missing = f"{prefix}_PASSWORD" if conf.get("username") else f"{prefix}_USERNAME"
        raise EnvError(missing, "missing while its partner is set",
                       f"set both {prefix}_USERNAME and {prefix}_PASSWORD, or neither")
    return conf


def _labels(env: Env, name: str, default: Mapping[str, str]) -> dict[str, str]:
    raw = get(env, name)
    if not raw:
        return dict(default)
    try:
        labels = json.loads(raw)
    except ValueError:
        labels = None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise EnvError(name, f"{raw!r} is not a JSON object of label names to string values",
                       'write it as {"application": "spilo"}')
    return labels


def _kubernetes(env: Env, ip: str) -> dict[str, Any]:
    conf: dict[str, Any] = {key: get(env, "KUBERNETES_" + key.upper(), default)
                            for key, default in KUBERNETES_DEFAULTS.items()}
    conf["labels"] = _labels(env, "KUBERNETES_LABELS", KUBERNETES_DEFAULT_LABELS)
    if get(env, "KUBERNETES_BOOTSTRAP_LABELS"):
        conf["bootstrap_labels"] = _labels(env, "KUBERNETES_BOOTSTRAP_LABELS", {})
    if get(env, "KUBERNETES_TMP_ROLE_LABEL"):
        conf["tmp_role_label"] = get(env, "KUBERNETES_TMP_ROLE_LABEL")
    if get(env, "POD_NAMESPACE"):
        conf["namespace"] = get(env, "POD_NAMESPACE")
    # Spilo: any non-empty KUBERNETES_USE_CONFIGMAPS means ConfigMaps
    if get(env, "KUBERNETES_USE_CONFIGMAPS") and values.boolean(env, "KUBERNETES_USE_CONFIGMAPS", True):
        conf["use_endpoints"] = False
    else:
        conf["use_endpoints"] = True
        conf["pod_ip"] = get(env, "POD_IP", ip)
        conf["ports"] = [{"name": "postgresql", "port": values.port(env, "PGPORT", 5432)}]
    conf["bypass_api_service"] = values.boolean(env, "KUBERNETES_BYPASS_API_SERVICE", True)
    return conf


def from_env(env: Env, ip: str = "") -> Dcs:
    refuse_unsupported(env)
    found = [(prefix, kind, conf) for prefix, kind in FAMILIES
             if (conf := _family(env, prefix)) is not None]
    if len(found) > 1:
        raise EnvError(f"{found[1][0]}_*", f"set together with {found[0][0]}_*",
                       f"use either the etcd v3 API ({found[0][0]}_*) or the v2 API ({found[1][0]}_*)")
    kubernetes = values.boolean(env, "DCS_ENABLE_KUBERNETES_API")
    if found and kubernetes:
        raise EnvError("DCS_ENABLE_KUBERNETES_API", "true while etcd is configured too",
                       f"use either the Kubernetes API or {found[0][0]}_* variables")
    if found:
        _, kind, conf = found[0]
        return Dcs(kind, etcd=conf)
    if kubernetes:
        return Dcs("kubernetes", kubernetes=_kubernetes(env, ip))
    return Dcs("local", etcd={"host": LOCAL_ETCD})
