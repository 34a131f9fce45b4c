"""A STAND-IN for the Kubernetes API server, for tests only.

No real kube-apiserver can run on this host (no container runtime for a control plane, no
binaries), so the Kubernetes DCS backend is tested against this in-process HTTP server. It
implements only the subset the backend uses, with the API server's semantics for it:

* ``/api/v1/namespaces/<ns>/{endpoints,configmaps,pods,services}[/<name>]``:
  GET (one object), GET list with ``labelSelector`` (``a=b,c=d``) and ``fieldSelector``
  (``metadata.name=x``), POST (create; 409 AlreadyExists), PUT (replace; the body's
  ``metadata.resourceVersion`` must match, else 409 Conflict), PATCH (JSON merge patch:
  null deletes a key; a ``metadata.resourceVersion`` in the patch is a precondition, 409 on
  mismatch), DELETE (with ``preconditions.resourceVersion``), DELETE of a collection by
  ``labelSelector``;
* watch (``?watch=1&resourceVersion=N&timeoutSeconds=T``): one JSON event per line
  (ADDED/MODIFIED/DELETED with the whole object) for every change after N;
* ``Authorization: Bearer <token>`` checked when a token is set (401 otherwise).

One resourceVersion counter for everything, as etcd's revision behind the real server.
"""
from __future__ import annotations

import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KINDS = {"endpoints": "Endpoints", "configmaps": "ConfigMap", "pods": "Pod", "services": "Service"}


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _selector(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, raw.split(",")):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip().lstrip("=")
    return out


class KubeApiStandIn:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, ns, name) -> object
        self.events: list[tuple[int, str, str, str, dict[str, Any]]] = []  # rv, type, kind, ns, object
        self.revision = 0
        self.requests = 0  # every request served (bench: requests per second)
        self.cond = threading.Condition()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                stand_in.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up mid-watch (a watcher closing its stream) is normal

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ---- lifecycle -----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "KubeApiStandIn":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.cond:
            self.cond.notify_all()

    def __enter__(self) -> "KubeApiStandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig(self, path: Any, namespace: str = "default") -> str:
        """Write a kubeconfig pointing at this server; returns its path."""
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
               "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
               "users": [{"name": "stand-in", "user": user}],
               "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in",
                                                            "namespace": namespace}}]}
        with open(path, "w") as f:
            json.dump(doc, f)
        return str(path)

    # ---- direct access for tests (the "kubelet" side) ------------------------------
    def put_pod(self, namespace: str, name: str, labels: dict[str, str], ip: str = "127.0.0.1") -> dict[str, Any]:
        with self.cond:
            obj = {"metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                   "status": {"podIP": ip, "phase": "Running"}}
            return self._store("pods", namespace, name, obj, "ADDED")

    def delete_pod(self, namespace: str, name: str) -> None:
        with self.cond:
            obj = self.objects.pop(("pods", namespace, name), None)
            if obj is not None:
                self._event("DELETED", "pods", namespace, obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.cond:
            obj = self.objects.get((kind, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def names(self, kind: str, namespace: str) -> list[str]:
        with self.cond:
            return sorted(n for k, ns, n in self.objects if k == kind and ns == namespace)

    # ---- storage -------------------------------------------------------------
    def _event(self, kind_type: str, kind: str, namespace: str, obj: dict[str, Any]) -> None:
        self.events.append((self.revision, kind_type, kind, namespace, copy.deepcopy(obj)))
        del self.events[:-5000]
        self.cond.notify_all()

    def _store(self, kind: str, namespace: str, name: str, obj: dict[str, Any], kind_type: str) -> dict[str, Any]:
        self.revision += 1
        meta = obj.setdefault("metadata", {})
        meta.update(name=name, namespace=namespace, resourceVersion=str(self.revision))
        meta.setdefault("uid", f"uid-{kind}-{namespace}-{name}-{self.revision}")
        obj["kind"], obj["apiVersion"] = KINDS[kind], "v1"
        self.objects[(kind, namespace, name)] = obj
        self._event(kind_type, kind, namespace, obj)
        return copy.deepcopy(obj)

    @staticmethod
    def _matches(obj: dict[str, Any], labels: dict[str, str], fields: dict[str, str]) -> bool:
        have = obj.get("metadata", {}).get("labels") or {}
        if any(have.get(k) != v for k, v in labels.items()):
            return False
        return all(obj.get("metadata", {}).get(k.split(".", 1)[-1]) == v for k, v in fields.items())

    # ---- HTTP ----------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler) -> None:
        with self.cond:
            self.requests += 1
        parts = urlsplit(req.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        if self.token and req.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reply(req, 401, self._status(401, "Unauthorized", "Unauthorized"))
        segs = [s for s in parts.path.split("/") if s]
        if len(segs) < 5 or segs[:3] != ["api", "v1", "namespaces"] or segs[4] not in KINDS or len(segs) > 6:
            return self._reply(req, 404, self._status(404, "NotFound", f"the server could not find {parts.path}"))
        namespace, kind = segs[3], segs[4]
        name = segs[5] if len(segs) == 6 else None
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self._reply(req, 400, self._status(400, "BadRequest", "body is not JSON"))
        method = req.command
        if method == "GET" and name is None and query.get("watch") in ("1", "true"):
            return self._watch(req, kind, namespace, query)
        with self.cond:
            code, answer = self._apply(method, kind, namespace, name, body, query)
        self._reply(req, code, answer)

    def _apply(self, method: str, kind: str, namespace: str, name: str | None, body: dict[str, Any],
               query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        key = (kind, namespace, name or "")
        current = self.objects.get(key)
        labels, fields = _selector(query.get("labelSelector", "")), _selector(query.get("fieldSelector", ""))
        if name is None:
            selected = [o for (k, ns, _), o in sorted(self.objects.items()) if k == kind and ns == namespace
                        and self._matches(o, labels, fields)]
            if method == "GET":
                return 200, {"kind": KINDS[kind] + "List", "apiVersion": "v1", "items": copy.deepcopy(selected),
                             "metadata": {"resourceVersion": str(self.revision)}}
            if method == "DELETE":
                for obj in selected:
                    del self.objects[(kind, namespace, obj["metadata"]["name"])]
                    self.revision += 1
                    self._event("DELETED", kind, namespace, obj)
                return 200, {"kind": KINDS[kind] + "List", "apiVersion": "v1", "items": copy.deepcopy(selected)}
            if method == "POST":
                new_name = (body.get("metadata") or {}).get("name")
                if not new_name:
                    return 422, self._status(422, "Invalid", "metadata.name: Required value")
                if (kind, namespace, new_name) in self.objects:
                    return 409, self._status(409, "AlreadyExists", f'{kind} "{new_name}" already exists')
                obj = copy.deepcopy(body)
                obj.get("metadata", {}).pop("resourceVersion", None)
                return 201, self._store(kind, namespace, new_name, obj, "ADDED")
            return 405, self._status(405, "MethodNotAllowed", method)
        if current is None:
            return 404, self._status(404, "NotFound", f'{kind} "{name}" not found')
        rv = current["metadata"]["resourceVersion"]
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "DELETE":
            want = (body.get("preconditions") or {}).get("resourceVersion")
            if want is not None and str(want) != rv:
                return 409, self._conflict(kind, name)
            del self.objects[key]
            self.revision += 1
            self._event("DELETED", kind, namespace, current)
            return 200, self._status(200, "Success", "deleted")
        if method == "PUT":
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want is not None and str(want) != rv:
                return 409, self._conflict(kind, name)
            return 200, self._store(kind, namespace, name, copy.deepcopy(body), "MODIFIED")
        if method == "PATCH":
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want is not None and str(want) != rv:
                return 409, self._conflict(kind, name)
            merged = _merge(current, body)
            return 200, self._store(kind, namespace, name, merged, "MODIFIED")
        return 405, self._status(405, "MethodNotAllowed", method)

    def _watch(self, req: BaseHTTPRequestHandler, kind: str, namespace: str, query: dict[str, str]) -> None:
        labels, fields = _selector(query.get("labelSelector", "")), _selector(query.get("fieldSelector", ""))
        since = int(query.get("resourceVersion") or 0)
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 30)
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        try:
            while True:
                with self.cond:
                    pending = [e for e in self.events if e[0] > since and e[2] == kind and e[3] == namespace]
                    if not pending:
                        rest = deadline - time.monotonic()
                        if rest <= 0:
                            break
                        self.cond.wait(min(rest, 1.0))
                        continue
                for rv, kind_type, _, _, obj in pending:
                    since = max(since, rv)
                    if self._matches(obj, labels, fields):
                        line = (json.dumps({"type": kind_type, "object": obj}) + "\n").encode()
                        req.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                req.wfile.flush()
            req.wfile.write(b"0\r\n\r\n")
            req.wfile.flush()
        except OSError:
            pass
        req.close_connection = True

    @staticmethod
    def _status(code: int, reason: str, message: str) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "status": "Failure" if code >= 400 else "Success",
                "message": message, "reason": reason, "code": code}

    def _conflict(self, kind: str, name: str) -> dict[str, Any]:
        return self._status(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the object has '
                            "been modified; please apply your changes to the latest version and try again")

    @staticmethod
    def _reply(req: BaseHTTPRequestHandler, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        req.send_response(code)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)
