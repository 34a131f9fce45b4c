"""Kubernetes API as the DCS, in Patroni's layout (the `kubernetes:` section).

Objects, all labelled with `labels` plus `<scope_label>: <scope>`, in `namespace`:

* the leader: Endpoints `<scope>` (use_endpoints) or ConfigMap `<scope>-leader`, annotations
  `leader`, `acquireTime`, `renewTime`, `ttl`, `transitions`, and the leader's `optime`,
  `slots`, `failsafe`; with Endpoints its subsets hold the leader pod's IP and `ports`, so a
  selector-less Service `<scope>` routes to the primary;
* `<scope>-config` (annotations `config`, `initialize`, `history`), `<scope>-sync`
  (`leader`, `sync_standby`, `quorum`), `<scope>-failover` (`leader`, `member`,
  `scheduled_at`);
* each member is its pod (the member name is the pod name): its state is the pod's `status`
  annotation and the pod's `role_label` is kept at `leader_label_value` /
  `follower_label_value` / `standby_leader_label_value` (Spilo's `spilo-role`), so a Service
  selecting that label follows failovers.

Every conditional write is a PATCH carrying `metadata.resourceVersion` (a compare-and-swap:
the API server answers 409 when the object changed).  Nothing expires on the server: like
Patroni, a member sees the leader lock lapse when it has not observed the leader record
change for `ttl` seconds on its own clock, so clock skew between nodes does not matter.
"""
from __future__ import annotations

import datetime
import http.client
import json
import logging
import os
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlsplit

import urllib3
import urllib3.exceptions
import urllib3.util
import yaml

from howdah.core.models import ClusterView
from howdah.dcs.base import Capabilities, DcsError, Nodes, build_view, dumps

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
LEADER_FIELDS = ("leader", "acquireTime", "renewTime", "ttl", "transitions")
MERGE_PATCH = "application/merge-patch+json"
SERVERS_TTL = 10.0  # how long the API server list of bypass_api_service is trusted (s)
# When this process first saw each leader record, on its monotonic clock, shared by every
# backend object of the process (the agent's loop and its watcher): (api, namespace, object)
# -> (record, seen at). The earliest sighting is as safe as any: the holder wrote the record
# before anyone could see it, so it lapses for us no sooner than for the holder.
_SEEN: dict[tuple[str, str, str], tuple[tuple[str | None, ...], float]] = {}
_SEEN_LOCK = threading.Lock()


class ConfigProblem(ValueError):
    """The kubernetes section or the environment cannot give an API server."""


def _parsed(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """PATRONI_KUBERNETES_* arrive as strings: labels and ports as YAML, flags as words."""
    out = dict(cfg)
    for key in ("labels", "ports", "bootstrap_labels"):
        if isinstance(out.get(key), str):
            try:
                out[key] = yaml.safe_load(out[key])
            except yaml.YAMLError:
                raise DcsError(f"kubernetes.{key}: {out[key]!r} is not YAML; write it as "
                               "{application: spilo}") from None
    for key in ("use_endpoints", "bypass_api_service"):
        if isinstance(out.get(key), str):
            out[key] = out[key].strip().lower() in ("1", "true", "yes", "on")
    return out


def _isotime() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class _Api:
    """Where the API server is and how to authenticate: in-cluster service account, else a
    kubeconfig (KUBECONFIG or ~/.kube/config, `context` or its current context)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.token_file: Path | None = None
        self.token: str | None = str(cfg["token"]) if cfg.get("token") else None
        self.namespace: str | None = None
        ctx = ssl.create_default_context()
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if host and port:
            self.url = f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"
            cacert = os.environ.get("PATRONI_KUBERNETES_CACERT") or cfg.get("cacert") or str(SERVICE_ACCOUNT / "ca.crt")
            if Path(cacert).exists():
                ctx.load_verify_locations(cafile=str(cacert))
            if self.token is None and (SERVICE_ACCOUNT / "token").exists():
                self.token_file = SERVICE_ACCOUNT / "token"
            ns_file = SERVICE_ACCOUNT / "namespace"
            if ns_file.exists():
                self.namespace = ns_file.read_text().strip() or None
        else:
            self._kubeconfig(cfg, ctx)
        self.ssl_context = ctx
        self._token_read = 0.0

    def _kubeconfig(self, cfg: Mapping[str, Any], ctx: ssl.SSLContext) -> None:
        path = Path(os.path.expanduser(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]))
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except OSError:
            raise ConfigProblem(f"not in a pod (no KUBERNETES_SERVICE_HOST) and no kubeconfig at {path}; "
                                "run in Kubernetes or set KUBECONFIG") from None
        except yaml.YAMLError:
            raise ConfigProblem(f"kubeconfig {path} is not valid YAML") from None

        def named(section: str, name: str | None) -> dict[str, Any]:
            for item in doc.get(section) or []:
                if isinstance(item, dict) and item.get("name") == name:
                    return dict(item.get(section[:-1]) or {})
            raise ConfigProblem(f"kubeconfig {path} has no {section[:-1]} named {name!r}")

        context = named("contexts", cfg.get("context") or doc.get("current-context"))
        cluster = named("clusters", context.get("cluster"))
        user = named("users", context.get("user")) if context.get("user") else {}
        self.url = str(cluster.get("server") or "").rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigProblem(f"kubeconfig {path}: cluster server {self.url!r} is not an http(s) URL")
        self.namespace = context.get("namespace")
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            import base64
            ctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority") or cfg.get("cacert"):
            ctx.load_verify_locations(cafile=str(cfg.get("cacert") or cluster["certificate-authority"]))
        if self.token is None and user.get("token"):
            self.token = str(user["token"])
        cert, key = user.get("client-certificate"), user.get("client-key")
        if user.get("client-certificate-data"):
            import base64
            cert = self._tempfile(base64.b64decode(user["client-certificate-data"]))
            key = self._tempfile(base64.b64decode(user["client-key-data"])) if user.get("client-key-data") else None
        if cert:
            ctx.load_cert_chain(str(cert), str(key) if key else None)

    @staticmethod
    def _tempfile(data: bytes) -> str:
        fd, name = tempfile.mkstemp(prefix="howdah-kube-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return name

    def bearer(self) -> str | None:
        """The token; a projected service-account token is re-read every minute (it rotates)."""
        if self.token_file is not None and time.monotonic() - self._token_read > 60:
            try:
                self.token = self.token_file.read_text().strip()
                self._token_read = time.monotonic()
            except OSError as exc:
                log.warning("kubernetes: cannot read %s: %s", self.token_file, exc)
        return self.token


class Kubernetes:
    """The Dcs protocol on the Kubernetes API (see the module docstring)."""

    capabilities = Capabilities(leases=False, watch_expiry=True, recursive_read=False, role_labels=True,
                                member_expiry=False)

    def __init__(self, cfg: Mapping[str, Any], namespace: str, scope: str, name: str,
                 request_timeout: float = 2.0) -> None:
        del namespace  # Patroni's `namespace` (the etcd prefix) plays no part in the object names
        try:
            self.api = _Api(cfg)
        except ConfigProblem as exc:
            raise DcsError(f"kubernetes: {exc}") from None
        self.namespace = str(os.environ.get("PATRONI_KUBERNETES_NAMESPACE") or cfg.get("namespace")
                             or self.api.namespace or "default")
        self.scope, self.name, self.timeout = scope, name, request_timeout
        cfg = _parsed(cfg)
        labels = cfg.get("labels") or {}
        self.labels = {str(k): str(v) for k, v in (labels.items() if isinstance(labels, dict) else ())}
        self.labels[str(cfg.get("scope_label") or "cluster-name")] = scope
        self.role_label = str(cfg.get("role_label") or "role")
        self.leader_value = str(cfg.get("leader_label_value") or "primary")
        self.follower_value = str(cfg.get("follower_label_value") or "replica")
        self.standby_leader_value = str(cfg.get("standby_leader_label_value") or "primary")
        self.tmp_role_label = cfg.get("tmp_role_label")
        self.use_endpoints = bool(cfg.get("use_endpoints"))
        self.kind = "endpoints" if self.use_endpoints else "configmaps"
        self.pod_ip = str(cfg.get("pod_ip") or os.environ.get("POD_IP") or "")
        self.ports = [{k: (int(v) if k == "port" else v) for k, v in dict(p).items() if k in ("name", "port", "protocol")}
                      for p in (cfg.get("ports") or [{"name": "postgresql", "port": 5432}]) if isinstance(p, dict)]
        self.leader_object = scope if self.use_endpoints else f"{scope}-leader"
        self.prefix = f"/{self.namespace}/{scope}"  # for messages: Kubernetes namespace and scope
        self.where = self.api.url
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=4, ssl_context=self.api.ssl_context,
                                         retries=urllib3.util.Retry(total=0, redirect=0))
        self._seen_key = (self.api.url, self.namespace, self.leader_object)
        self._leader_rv: str | None = None
        self._pod_written: tuple[str, tuple[tuple[str, str | None], ...]] | None = None
        self._config_service = False
        self._list_rv = "0"
        # bypass_api_service: the API servers behind the `kubernetes` Service, asked directly
        self.bypass = bool(cfg.get("bypass_api_service"))
        self._servers: list[str] = [self.api.url]
        self._servers_read = -SERVERS_TTL

    # ---- transport -----------------------------------------------------------
    def set_timeout(self, request_timeout: float) -> None:
        self.timeout = request_timeout

    def _path(self, kind: str, name: str | None = None, **query: str) -> str:
        path = f"/api/v1/namespaces/{quote(self.namespace)}/{kind}"
        if name is not None:
            path += "/" + quote(name)
        if query:
            path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        return path

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        token = self.api.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    # ---- bypass_api_service: the `kubernetes` Service's endpoints ----------------
    def _api_servers(self, endpoints: Mapping[str, Any]) -> list[str]:
        """URLs of the API servers an Endpoints object `default/kubernetes` lists: each
        address with the port named https (the only port when there is one), on the
        configured URL's scheme."""
        scheme = urlsplit(self.api.url).scheme or "https"
        urls: list[str] = []
        for subset in endpoints.get("subsets") or []:
            ports = [p for p in subset.get("ports") or [] if isinstance(p, dict)]
            port = next((p for p in ports if p.get("name") == "https" and p.get("protocol", "TCP") == "TCP"),
                        ports[0] if len(ports) == 1 else None)
            if port is None or not port.get("port"):
                continue
            for address in subset.get("addresses") or []:
                ip = str((address or {}).get("ip") or "")
                if ip:
                    urls.append(f"{scheme}://[{ip}]:{port['port']}" if ":" in ip else f"{scheme}://{ip}:{port['port']}")
        return urls

    def _refresh_servers(self, deadline: float) -> None:
        """Read the `kubernetes` Service's endpoints (through the servers known so far, then
        the Service itself) at most every SERVERS_TTL seconds; keep the old list when none
        answers; give bypass_api_service up (as Patroni does) when RBAC refuses the read."""
        if not self.bypass or time.monotonic() - self._servers_read < SERVERS_TTL:
            return
        path = "/api/v1/namespaces/default/endpoints/kubernetes"
        for base in dict.fromkeys([*self._servers, self.api.url]):
            rest = deadline - time.monotonic()
            if rest <= 0.05:
                return
            try:
                resp = self._pool.request("GET", base + path, headers=self._headers(),
                                          timeout=urllib3.Timeout(min(self.timeout, rest)))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                log.debug("kubernetes: reading the API servers from %s failed: %s", base, exc)
                continue
            if resp.status in (401, 403, 404):
                log.warning("kubernetes: bypass_api_service is off: GET %s answered %s (it needs get on "
                            "endpoints/kubernetes in the default namespace; docs/kubernetes.md)", path, resp.status)
                self.bypass, self._servers = False, [self.api.url]
                return
            if resp.status != 200:
                continue
            try:
                urls = self._api_servers(json.loads(resp.data or b"{}"))
            except (ValueError, AttributeError, TypeError):
                urls = []
            if urls:
                if urls != self._servers:
                    log.info("kubernetes: talking to the API servers %s directly (bypass_api_service)",
                             ", ".join(urls))
                # the one that answered last stays first while it is in the list
                self._servers = sorted(urls, key=lambda u: u != self._servers[0])
            self._servers_read = time.monotonic()
            return

    def _failed(self, base: str) -> None:
        """`base` did not answer: the next request starts with the next API server."""
        if len(self._servers) > 1 and self._servers[0] == base:
            self._servers = self._servers[1:] + self._servers[:1]

    def _request(self, method: str, path: str, body: Any = None,
                 content_type: str = "application/json") -> tuple[int, Any]:
        """(status, JSON) of one call; DcsError when the API server does not answer (one retry,
        or each API server once with bypass_api_service, within twice the request timeout)
        or answers 5xx/401/403."""
        deadline = time.monotonic() + 2 * self.timeout
        self._refresh_servers(deadline)
        data = json.dumps(body).encode() if body is not None else None
        last: Exception | None = None
        for _ in range(max(2, len(self._servers))):
            rest = deadline - time.monotonic()
            if rest <= 0.05:
                break
            base = self._servers[0]
            try:
                resp = self._pool.request(method, base + path, body=data,
                                          headers=self._headers(content_type if data is not None else None),
                                          timeout=urllib3.Timeout(min(self.timeout, rest)))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                last = exc
                self._failed(base)
                continue
            try:
                answer = json.loads(resp.data or b"{}")
            except ValueError:
                answer = {}
            if resp.status >= 500 or resp.status == 429:
                last = DcsError(f"{resp.status} {answer.get('message', '') if isinstance(answer, dict) else ''}")
                self._failed(base)
                continue
            if resp.status in (401, 403):
                message = answer.get("message", "") if isinstance(answer, dict) else ""
                raise DcsError(f"kubernetes API refused {method} {path}: {resp.status} {message} "
                               "(check the service account's RBAC: docs/kubernetes.md)")
            return resp.status, answer
        if self.bypass:
            self._servers_read = -SERVERS_TTL  # read the list again on the next request
        where = self.where if self._servers == [self.api.url] else ", ".join(self._servers)
        raise DcsError(f"kubernetes API unreachable ({where}): {last or 'no time left'}")

    def _patch(self, kind: str, name: str, patch: Mapping[str, Any]) -> tuple[int, Any]:
        return self._request("PATCH", self._path(kind, name), patch, MERGE_PATCH)

    def _object(self, name: str, annotations: Mapping[str, Any], rv: str | None = None,
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": dict(self.labels),
                                "annotations": dict(annotations)}
        if rv is not None:
            meta["resourceVersion"] = rv
        return {"metadata": meta, **(extra or {})}

    def _get(self, name: str, kind: str | None = None) -> dict[str, Any] | None:
        code, obj = self._request("GET", self._path(kind or self.kind, name))
        if code == 404:
            return None
        if code != 200:
            raise DcsError(f"kubernetes: GET {name}: {code}")
        return obj if isinstance(obj, dict) else None

    def _write(self, name: str, annotations: Mapping[str, Any], rv: str | None,
               create: bool, extra: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Create (create=True: only if absent) or patch (only if still at rv, when rv is
        given); the new object, or None when the compare-and-swap failed."""
        if create:
            body = self._object(name, {k: v for k, v in annotations.items() if v is not None}, None, extra)
            code, obj = self._request("POST", self._path(self.kind), body)
            if code == 201 or code == 200:
                return obj if isinstance(obj, dict) else {}
            if code == 409:
                return None
        else:
            code, obj = self._patch(self.kind, name, self._object(name, annotations, rv, extra))
            if code == 200:
                return obj if isinstance(obj, dict) else {}
            if code in (404, 409):
                return None
        message = obj.get("message", "") if isinstance(obj, dict) else ""
        raise DcsError(f"kubernetes: writing {self.kind}/{name}: {code} {message}")

    def _upsert(self, name: str, annotations: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> bool:
        """Patch without precondition, creating the object when absent."""
        for _ in range(3):
            if self._write(name, annotations, None, False, extra) is not None:
                return True
            if self._write(name, annotations, None, True, extra) is not None:
                return True
        return False

    @staticmethod
    def _annotations(obj: Mapping[str, Any] | None) -> dict[str, str]:
        return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})

    @staticmethod
    def _rv(obj: Mapping[str, Any] | None) -> str | None:
        rv = ((obj or {}).get("metadata") or {}).get("resourceVersion")
        return str(rv) if rv is not None else None

    # ---- the leader record, as observed on our clock -----------------------------
    @property
    def _observed(self) -> tuple[tuple[str | None, ...], float]:
        with _SEEN_LOCK:
            return _SEEN.get(self._seen_key, ((), 0.0))

    def _observe(self, annotations: Mapping[str, str], rv: str | None) -> None:
        record = tuple(annotations.get(k) for k in LEADER_FIELDS)
        with _SEEN_LOCK:
            if record != _SEEN.get(self._seen_key, ((), 0.0))[0]:
                _SEEN[self._seen_key] = (record, time.monotonic())
        self._leader_rv = rv

    def _observed_leader(self) -> str | None:
        """The leader name we observed, while its lock has not lapsed on our clock."""
        record, at = self._observed
        if not record or not record[0]:
            return None
        try:
            ttl = int(record[3] or 30)
        except ValueError:
            ttl = 30
        return record[0] if time.monotonic() - at <= ttl else None

    def _expires_at(self) -> float | None:
        record, at = self._observed
        if not record or not record[0]:
            return None
        try:
            return at + int(record[3] or 30)
        except ValueError:
            return at + 30

    def _leader_annotations(self, name: str, ttl: int, previous: Mapping[str, str]) -> dict[str, Any]:
        now = _isotime()
        try:
            transitions = int(previous.get("transitions") or 0)
        except ValueError:
            transitions = 0
        same = previous.get("leader") == name
        if previous.get("leader") and not same:
            transitions += 1
        return {"leader": name, "ttl": str(ttl), "renewTime": now,
                "acquireTime": previous.get("acquireTime") if same and previous.get("acquireTime") else now,
                "transitions": str(transitions)}

    def _subsets(self, ips: list[str]) -> dict[str, Any]:
        if not self.use_endpoints:
            return {}
        if not ips:
            return {"subsets": []}
        addresses = [{"ip": ip, "targetRef": {"kind": "Pod", "namespace": self.namespace, "name": self.name}}
                     for ip in ips]
        return {"subsets": [{"addresses": addresses, "ports": self.ports}]}

    def _take(self, annotations: Mapping[str, Any], obj: Mapping[str, Any] | None, ips: list[str]) -> bool:
        if obj is None:
            new = self._write(self.leader_object, annotations, None, True, self._subsets(ips))
        else:
            new = self._write(self.leader_object, annotations, self._rv(obj), False, self._subsets(ips))
        if new is None:
            return False
        self._observe(self._annotations(new), self._rv(new))
        return True

    # ---- reads ---------------------------------------------------------------
    def read_nodes(self) -> tuple[Nodes, int]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        code, kinds = self._request("GET", self._path(self.kind, labelSelector=selector))
        if code != 200 or not isinstance(kinds, dict):
            raise DcsError(f"kubernetes: listing {self.kind}: {code}")
        code, pods = self._request("GET", self._path("pods", labelSelector=selector))
        if code != 200 or not isinstance(pods, dict):
            raise DcsError(f"kubernetes: listing pods: {code}")
        objects = {str(o["metadata"]["name"]): o for o in kinds.get("items") or [] if o.get("metadata")}
        nodes: Nodes = {}

        def rv(obj: Mapping[str, Any]) -> int:
            try:
                return int(self._rv(obj) or 0)
            except ValueError:
                return 0

        leader = objects.get(self.leader_object)
        ann = self._annotations(leader)
        self._observe(ann, self._rv(leader))
        if leader is not None:
            name = self._observed_leader()
            if name:
                nodes["leader"] = (name, rv(leader))
            if ann.get("optime"):
                status: dict[str, Any] = {"optime": int(ann["optime"]) if ann["optime"].isdigit() else None}
                for key in ("slots", "retain_slots"):
                    if ann.get(key):
                        try:
                            status[key] = json.loads(ann[key])
                        except ValueError:
                            pass
                status.setdefault("slots", {})
                nodes["status"] = (dumps(status), rv(leader))
            if ann.get("failsafe"):
                nodes["failsafe"] = (ann["failsafe"], rv(leader))
        config = objects.get(f"{self.scope}-config")
        ann = self._annotations(config)
        if config is not None:
            for key in ("config", "initialize", "history"):
                if key in ann:
                    nodes[key] = (ann[key], rv(config))
        sync = objects.get(f"{self.scope}-sync")
        ann = self._annotations(sync)
        if sync is not None and ann.get("leader"):
            value: dict[str, Any] = {"leader": ann["leader"], "sync_standby": ann.get("sync_standby")}
            if ann.get("quorum"):
                value["quorum"] = int(ann["quorum"]) if ann["quorum"].isdigit() else ann["quorum"]
            nodes["sync"] = (dumps(value), rv(sync))
        failover = objects.get(f"{self.scope}-failover")
        if failover is not None:
            ann = self._annotations(failover)
            nodes["failover"] = (dumps({k: ann[k] for k in ("leader", "member", "scheduled_at") if ann.get(k)}),
                                 rv(failover))
        for pod in pods.get("items") or []:
            ann = self._annotations(pod)
            if ann.get("status"):
                nodes[f"members/{pod['metadata']['name']}"] = (ann["status"], rv(pod))
        try:
            index = max(int((kinds.get("metadata") or {}).get("resourceVersion") or 0),
                        int((pods.get("metadata") or {}).get("resourceVersion") or 0))
        except ValueError:
            index = 0
        self._list_rv = str((kinds.get("metadata") or {}).get("resourceVersion") or "0")
        return nodes, index

    def get_cluster(self) -> ClusterView:
        nodes, index = self.read_nodes()
        return build_view(nodes, index) if nodes else ClusterView(index=index)

    # ---- leader --------------------------------------------------------------
    def acquire_leader(self, ttl: int) -> bool:
        obj = self._get(self.leader_object)
        ann = self._annotations(obj)
        self._observe(ann, self._rv(obj))
        if obj is not None and ann.get("leader") and self._observed_leader() is not None:
            return False  # held (by us or another), not lapsed
        return self._take(self._leader_annotations(self.name, ttl, ann), obj, [self.pod_ip] if self.pod_ip else [])

    def renew_leader(self, ttl: int) -> bool:
        obj = self._get(self.leader_object)
        ann = self._annotations(obj)
        self._observe(ann, self._rv(obj))
        if obj is None or ann.get("leader") != self.name or self._observed_leader() != self.name:
            return False  # not ours, or lapsed: it can only be acquired again
        return self._take(self._leader_annotations(self.name, ttl, ann), obj, [self.pod_ip] if self.pod_ip else [])

    def release_leader(self) -> bool:
        obj = self._get(self.leader_object)
        ann = self._annotations(obj)
        if obj is None or ann.get("leader") != self.name:
            return False
        new = self._write(self.leader_object, {"leader": None}, self._rv(obj), False, self._subsets([]))
        if new is None:
            return False
        self._observe(self._annotations(new), self._rv(new))
        return True

    def evict_leader(self, name: str, index: int) -> bool:
        obj = self._get(self.leader_object)
        if obj is None or self._annotations(obj).get("leader") != name or self._rv(obj) != str(index):
            return False
        new = self._write(self.leader_object, {"leader": None}, str(index), False, self._subsets([]))
        if new is None:
            return False
        self._observe(self._annotations(new), self._rv(new))
        return True

    def hand_leader(self, target: str, ttl: int) -> bool:
        obj = self._get(self.leader_object)
        ann = self._annotations(obj)
        if obj is None or ann.get("leader") != self.name:
            return False
        return self._take(self._leader_annotations(target, ttl, ann), obj, [])

    # ---- members -------------------------------------------------------------
    def _role_value(self, data: Mapping[str, Any]) -> str | None:
        role, state = str(data.get("role") or ""), str(data.get("state") or "")
        if self._observed_leader() == self.name:
            return self.standby_leader_value if role == "standby_leader" else self.leader_value
        if state in ("running", "streaming") and role not in ("primary", "master"):
            return self.follower_value if role == "replica" else role
        return None

    def touch_member(self, data: Mapping[str, Any], ttl: int) -> None:
        """The pod's `status` annotation and role label; patched only when they change."""
        del ttl  # a member lives as long as its pod
        raw = dumps(dict(data))
        labels: dict[str, str | None] = {self.role_label: self._role_value(data)}
        if self.tmp_role_label:
            labels[str(self.tmp_role_label)] = str(data.get("role")) if labels[self.role_label] else None
        wanted = (raw, tuple(sorted(labels.items())))
        if self._pod_written == wanted:
            return
        code, answer = self._patch("pods", self.name, {"metadata": {"labels": labels, "annotations": {"status": raw}}})
        if code == 404:
            raise DcsError(f"kubernetes: no pod {self.name!r} in namespace {self.namespace!r}: the member "
                           "name must be the pod's name (name: / PATRONI_NAME = POD_NAME)")
        if code != 200:
            message = answer.get("message", "") if isinstance(answer, dict) else ""
            raise DcsError(f"kubernetes: patching pod {self.name}: {code} {message}")
        self._pod_written = wanted

    def delete_member(self) -> None:
        self._patch("pods", self.name, {"metadata": {"labels": {self.role_label: None},
                                                      "annotations": {"status": None}}})
        self._pod_written = None

    # ---- initialize, config and the other objects --------------------------------
    def _config_write(self, key: str, value: str | None, index: int | None, only_if_absent: bool) -> bool:
        name = f"{self.scope}-config"
        self._ensure_config_service()
        obj = self._get(name)
        if obj is None:
            if index is not None or value is None:
                return False
            return self._write(name, {key: value}, None, True) is not None
        ann = self._annotations(obj)
        if only_if_absent and key in ann:
            return False
        if index is not None and self._rv(obj) != str(index):
            return False
        return self._write(name, {key: value}, self._rv(obj), False) is not None

    def _ensure_config_service(self) -> None:
        """With Endpoints, `<scope>-config` needs a Service of that name, or the endpoints
        controller may clean the object (as Patroni does, a headless Service; 403/409 are fine)."""
        if not self.use_endpoints or self._config_service:
            return
        body = {"metadata": {"name": f"{self.scope}-config", "namespace": self.namespace, "labels": dict(self.labels)},
                "spec": {"clusterIP": "None"}}
        code, _ = self._request("POST", self._path("services"), body)
        if code in (200, 201, 403, 409):
            self._config_service = True

    def take_initialize(self) -> bool:
        return self._config_write("initialize", "", None, True)

    def set_initialize(self, sysid: str) -> bool:
        return self._config_write("initialize", sysid, None, False)

    def clear_initialize(self, index: int | None = None) -> bool:
        return self._config_write("initialize", None, index, False)

    def write_config(self, config: Mapping[str, Any], index: int | None) -> bool:
        return self._config_write("config", dumps(dict(config)), index, index is None)

    def write_history(self, history: list[list[Any]]) -> None:
        self._ensure_config_service()
        self._upsert(f"{self.scope}-config", {"history": dumps(history)})

    def write_status(self, optime: int, slots: Mapping[str, int],
                     retain: Sequence[str] | None = None) -> None:
        self._upsert(self.leader_object, {"optime": str(optime),
                                          "slots": dumps(dict(slots)) if slots else None,
                                          "retain_slots": dumps(sorted(retain)) if retain else None})

    def write_failsafe(self, members: Mapping[str, str]) -> None:
        self._upsert(self.leader_object, {"failsafe": dumps(dict(members)) if members else None})

    def write_sync(self, leader: str | None, standbys: tuple[str, ...], index: int | None,
                   quorum: int = 0) -> bool:
        name = f"{self.scope}-sync"
        value = {"leader": leader, "sync_standby": ",".join(sorted(standbys)) or None,
                 "quorum": str(quorum) if quorum else None}
        obj = self._get(name)
        if obj is None:
            return index is None and self._write(name, value, None, True) is not None
        if index is None and self._annotations(obj).get("leader"):
            return False  # create only if absent
        if index is not None and self._rv(obj) != str(index):
            return False
        return self._write(name, value, self._rv(obj), False) is not None

    def delete_sync(self) -> bool:
        obj = self._get(f"{self.scope}-sync")
        if obj is None:
            return False
        return self._write(f"{self.scope}-sync", {"leader": None, "sync_standby": None, "quorum": None},
                           self._rv(obj), False) is not None

    def write_failover(self, value: Mapping[str, Any], index: int | None = None) -> bool:
        name = f"{self.scope}-failover"
        annotations = {k: (str(value[k]) if value.get(k) not in (None, "") else None)
                       for k in ("leader", "member", "scheduled_at")}
        if index is None:
            return self._upsert(name, annotations)
        obj = self._get(name)
        if obj is None or self._rv(obj) != str(index):
            return False
        return self._write(name, annotations, str(index), False) is not None

    def clear_failover(self) -> bool:
        """Patroni clears the failover object by emptying its annotations; so do we."""
        return self._upsert(f"{self.scope}-failover", {"leader": None, "member": None, "scheduled_at": None})

    def wipe(self) -> bool:
        """Delete the cluster's objects and the members' status (the pods stay)."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        code, gone = self._request("DELETE", self._path(self.kind, labelSelector=selector))
        deleted = len((gone or {}).get("items") or []) if code == 200 and isinstance(gone, dict) else 0
        code, pods = self._request("GET", self._path("pods", labelSelector=selector))
        for pod in (pods or {}).get("items") or [] if code == 200 and isinstance(pods, dict) else []:
            if self._annotations(pod).get("status"):
                self._patch("pods", pod["metadata"]["name"], {"metadata": {
                    "labels": {self.role_label: None}, "annotations": {"status": None}}})
                deleted += 1
        self._pod_written = None
        with _SEEN_LOCK:
            _SEEN.pop(self._seen_key, None)
        return deleted > 0

    # ---- watch ---------------------------------------------------------------
    def watch_leader(self, view: ClusterView, timeout: float, eager: bool = False) -> bool:
        """Block until the leader record changes hands, goes, or lapses on our clock, or until
        timeout; a renewal by the same leader only moves the lapse time (unless `eager`)."""
        current = view.leader.name if view.leader else None
        deadline = time.monotonic() + timeout
        since = str(view.index) if view.index else self._list_rv
        if current != self._observed_leader():
            try:  # this object may not have read the leader yet (the agent's watcher)
                obj = self._get(self.leader_object)
            except DcsError as exc:
                log.debug("kubernetes: leader read for the watch failed: %s", exc)
                time.sleep(max(0.0, min(deadline - time.monotonic(), 0.5)))
                return False
            self._observe(self._annotations(obj), self._rv(obj))
            if current != self._observed_leader():
                return True
            since = self._rv(obj) or since
        while True:
            now = time.monotonic()
            expires = self._expires_at() if current else None
            if expires is not None and now >= expires:
                return True
            end = min(deadline, expires) if expires is not None else deadline
            if end - now <= 0.01:
                return False
            try:
                woke, since = self._watch_once(since, current, eager, end)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                log.debug("kubernetes: leader watch failed: %s", exc)
                self._failed(self._servers[0])
                time.sleep(max(0.0, min(deadline - time.monotonic(), 0.5)))
                return False
            if woke:
                return True

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        parts = urlsplit(self._servers[0])
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=timeout,
                                               context=self.api.ssl_context)
        return http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)

    def _watch_once(self, since: str, current: str | None, eager: bool, end: float) -> tuple[bool, str]:
        rest = end - time.monotonic()
        path = self._path(self.kind, watch="1", resourceVersion=since, timeoutSeconds=str(max(1, int(rest + 1))),
                          fieldSelector=f"metadata.name={self.leader_object}")
        conn = self._connection(min(self.timeout, rest))
        try:
            conn.request("GET", path, headers=self._headers())
            resp = conn.getresponse()
            if resp.status == 410:
                return True, since  # too old: read the cluster again
            if resp.status != 200:
                time.sleep(max(0.0, min(end - time.monotonic(), 0.5)))
                return False, since
            while True:
                rest = end - time.monotonic()
                if rest <= 0.01:
                    return False, since
                if conn.sock is not None:
                    conn.sock.settimeout(rest)
                try:
                    line = resp.readline()
                except TimeoutError:
                    return False, since
                if not line:
                    return False, since  # the server closed the watch: go on from `since`
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    return True, since
                since = self._rv(obj) or since
                ann = {} if event.get("type") == "DELETED" else self._annotations(obj)
                self._observe(ann, self._rv(obj))
                if eager or ann.get("leader") != current:
                    return True, since
        finally:
            conn.close()
