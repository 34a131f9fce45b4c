"""Which DCS the agent uses: etcd from ETCD_HOST / ETCD_HOSTS / ETCD_URL, the Kubernetes API,
or (none given) a local etcd started under supervisord for a single-node cluster."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import values
from .errors import EnvError
from .values import Env, get

LOCAL_ETCD = "127.0.0.1:2379"


@dataclass(frozen=True)
class Dcs:
    kind: str  # "etcd" | "local" | "kubernetes"
    etcd: dict[str, Any] = field(default_factory=dict)
    kubernetes: dict[str, Any] = field(default_factory=dict)

    def section(self) -> dict[str, Any]:
        """The agent YAML's DCS section: {"etcd": {...}} or {"kubernetes": {...}}."""
        if self.kind == "kubernetes":
            return {"kubernetes": dict(self.kubernetes)}
        return {"etcd": dict(self.etcd)}


def _etcd(env: Env) -> dict[str, Any] | None:
    given = [n for n in ("ETCD_HOST", "ETCD_HOSTS", "ETCD_URL") if get(env, n)]
    if len(given) > 1:
        raise EnvError(given[1], f"set together with {given[0]}", f"set only one of {', '.join(given)}")
    if not given:
        return None
    name = given[0]
    conf: dict[str, Any]
    if name == "ETCD_HOST":
        conf = {"host": values.host_port(name, get(env, name))}
    elif name == "ETCD_HOSTS":
        conf = {"hosts": values.host_list(env, name)}
    else:
        conf = {"url": values.url(env, name)}
    protocol = get(env, "ETCD_PROTOCOL")
    if protocol:
        if protocol not in ("http", "https"):
            raise EnvError("ETCD_PROTOCOL", f"{protocol!r} is not http or https", "set it to http or https")
        conf["protocol"] = protocol
    for var, key in (("ETCD_USERNAME", "username"), ("ETCD_PASSWORD", "password"), ("ETCD_CACERT", "cacert"),
                     ("ETCD_CERT", "cert"), ("ETCD_KEY", "key")):
        if get(env, var):
            conf[key] = get(env, var)
    if bool(conf.get("username")) != bool(conf.get("password")):
        missing = "ETCD_PASSWORD" if conf.get("username") else "ETCD_USERNAME"
        raise EnvError(missing, "missing while its partner is set", "set both ETCD_USERNAME and ETCD_PASSWORD, or neither")
    return conf


def from_env(env: Env) -> Dcs:
    etcd = _etcd(env)
    kubernetes = values.boolean(env, "DCS_ENABLE_KUBERNETES_API")
    if etcd is not None and kubernetes:
        raise EnvError("DCS_ENABLE_KUBERNETES_API", "true while etcd is configured too",
                       "use either the Kubernetes API or ETCD_* variables")
    if etcd is not None:
        return Dcs("etcd", etcd=etcd)
    if kubernetes:
        conf: dict[str, Any] = {
            "labels": {"application": get(env, "KUBERNETES_LABELS_APPLICATION", "howdah")},
            "scope_label": get(env, "KUBERNETES_SCOPE_LABEL", "cluster-name"),
            "role_label": get(env, "KUBERNETES_ROLE_LABEL", "role"),
            "use_endpoints": not values.boolean(env, "KUBERNETES_USE_CONFIGMAPS"),
        }
        if get(env, "POD_NAMESPACE"):
            conf["namespace"] = get(env, "POD_NAMESPACE")
        return Dcs("kubernetes", kubernetes=conf)
    return Dcs("local", etcd={"host": LOCAL_ETCD})
