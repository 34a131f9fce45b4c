"""etcd v3 backend on etcd's JSON gateway (/v3/...), the layout of CONTRACT §2.

Keys and values are base64 in the gateway's JSON.  Every ttl key of this
member (its member key, and the leader key while it leads) is bound to one
lease of `ttl` seconds: a renewal is a lease keep-alive plus a transaction
that rewrites the leader key only if it still holds our name (and the
revision we last wrote), so an eviction by revision sees every renewal.
Unary calls go through a thread-safe urllib3 pool, one attempt per host,
moving on to the next host within the request budget; the leader watch uses
its own stdlib connection so its deadline is exact.
"""
from __future__ import annotations

import base64
import http.client
import json
import logging
import ssl
import threading
import time
from typing import Any, Mapping, Sequence

import urllib3
import urllib3.exceptions
import urllib3.util

from howdah.core.models import ClusterView
from howdah.dcs.base import Capabilities, DcsError, Nodes, build_view, dumps, status_json, \
    sync_value
from howdah.dcs import srv
from howdah.dcs.endpoints import hosts_desc, parse_hosts, url_credentials

log = logging.getLogger(__name__)
Op = dict[str, Any]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(raw: str | None) -> str:
    return base64.b64decode(raw or "").decode("utf-8", "replace")


def prefix_end(prefix: str) -> str:
    """The range_end that selects every key starting with prefix."""
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


class AuthError(Exception):
    """The token was refused (expired or revoked): authenticate again."""


class Etcd3:
    """The key layout of CONTRACT §2 on etcd's v3 API."""

    capabilities = Capabilities(leases=True, watch_expiry=True, recursive_read=True)

    def __init__(self, cfg: Mapping[str, Any], namespace: str, scope: str, name: str,
                 request_timeout: float = 2.0) -> None:
        self.protocol, self.hosts = parse_hosts(cfg)
        self.where = hosts_desc(self.hosts)
        self.prefix = "/" + "/".join(p for p in (namespace.strip("/"), scope) if p)
        self.name = name
        self.timeout = request_timeout
        self.user, self.password = url_credentials(cfg)
        self.cfg = dict(cfg)
        # `srv` (Spilo's ETCD3_DISCOVERY_DOMAIN) when no host is listed: looked up now and
        # again whenever no known host answers (howdah/dcs/srv.py)
        self.srv = None if any(cfg.get(k) for k in ("host", "hosts", "url", "proxy")) else cfg.get("srv")
        self._srv_tried = -srv.RETRY_AFTER
        if self.srv:
            self.hosts = []
            self._rediscover()
        kw: dict[str, Any] = {}
        if cfg.get("cacert"):
            kw.update(cert_reqs="CERT_REQUIRED", ca_certs=cfg["cacert"])
        elif self.protocol == "https":
            kw.update(cert_reqs="CERT_NONE")
        if cfg.get("cert"):
            kw.update(cert_file=cfg["cert"], key_file=cfg.get("key"))
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=4, retries=urllib3.util.Retry(total=0, redirect=0), **kw)
        self._current = 0
        self._token: str | None = None
        self._lock = threading.RLock()
        self._lease: str | None = None
        self._lease_ttl = 0
        self._lease_fresh = 0.0  # monotonic time of the last grant or keep-alive
        self._leader_rev: int | None = None  # mod_revision of our last leader write
        self._init_rev: int | None = None
        self._seen: dict[str, tuple[str | None, str]] = {}  # last read: rel -> (value, lease)
        if self.protocol == "http" and any(cfg.get(k) for k in ("cert", "cacert")):
            log.warning("etcd3: cert/cacert are set but protocol is http; they are not used")

    # ---- transport -----------------------------------------------------------
    def set_timeout(self, request_timeout: float) -> None:
        self.timeout = request_timeout

    def _url(self, host: tuple[str, int], path: str) -> str:
        return f"{self.protocol}://{host[0]}:{host[1]}{path}"

    def _post(self, host: tuple[str, int], path: str, body: Mapping[str, Any],
              timeout: float) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.user and path != "/v3/auth/authenticate":
            if self._token is None:
                self._authenticate(host, timeout)
            headers["Authorization"] = self._token or ""
        resp = self._pool.request("POST", self._url(host, path), body=json.dumps(body).encode(),
                                  headers=headers, timeout=urllib3.Timeout(timeout))
        try:
            data = json.loads(resp.data or b"{}")
        except ValueError:
            raise DcsError(f"etcd at {host[0]}:{host[1]} answered {resp.status} with no JSON "
                           "(is it etcd 3.4 or later, with its v3 gateway?)") from None
        if resp.status != 200:
            message = str(data.get("message") or data.get("error") or resp.status) \
                if isinstance(data, dict) else str(resp.status)
            if "auth token" in message or "authentication" in message.lower() and \
                    path != "/v3/auth/authenticate":
                self._token = None
                raise AuthError(message)
            raise DcsError(f"etcd at {host[0]}:{host[1]}: {message}")
        return data

    def _authenticate(self, host: tuple[str, int], timeout: float) -> None:
        data = self._post(host, "/v3/auth/authenticate",
                          {"name": self.user, "password": self.password or ""}, timeout)
        self._token = str(data.get("token") or "") or None
        if self._token is None:
            raise DcsError(f"etcd at {host[0]}:{host[1]} gave no auth token for {self.user!r}")

    def _call(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST on the current host, moving on to the next on failure, all of
        it within twice the request timeout (a leader must learn of a dead DCS
        within its retry budget)."""
        deadline = time.monotonic() + 2 * self.timeout
        last: Exception | None = None
        if not self.hosts and not self._rediscover():
            raise DcsError(f"etcd: DNS has no SRV record {srv.names(str(self.srv), self._srv_suffix)} (yet)")
        hosts = self.hosts
        n = len(hosts)
        for attempt in range(n + (1 if self.user else 0)):
            rest = deadline - time.monotonic()
            if rest <= 0.05:
                break
            idx = (self._current + attempt) % n
            try:
                result = self._post(hosts[idx], path, body, min(self.timeout, rest))
            except AuthError as exc:
                last = exc
                continue  # the next attempt authenticates again
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                last = exc
                self._token = None
                continue
            except DcsError as exc:
                text = str(exc)
                if "no leader" in text or "timed out" in text or "unavailable" in text.lower():
                    last = exc
                    continue
                raise
            self._current = idx
            return result
        self._current = (self._current + 1) % n
        where = self.where
        self._rediscover()  # the next call may find other members behind the domain
        raise DcsError(f"etcd unreachable ({where}): {last or 'no time left'}")

    @property
    def _srv_suffix(self) -> str:
        return str(self.cfg.get("srv_suffix") or "")

    def _rediscover(self) -> bool:
        """Look the SRV records up again (at most every srv.RETRY_AFTER s); True when hosts
        are known afterwards. A failed lookup keeps the hosts known so far."""
        if not self.srv:
            return bool(self.hosts)
        if time.monotonic() - self._srv_tried < srv.RETRY_AFTER:
            return bool(self.hosts)
        self._srv_tried = time.monotonic()
        found = srv.lookup_again(str(self.srv), self._srv_suffix, self.hosts)
        if found:
            protocol, hosts = found
            self.hosts, self._current = hosts, 0
            self.protocol = str(self.cfg.get("protocol") or protocol)
            self.where = f"{hosts_desc(hosts)} from SRV {self.srv}"
        return bool(self.hosts)

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def _txn(self, compare: list[Op], success: list[Op]) -> tuple[bool, int]:
        data = self._call("/v3/kv/txn", {"compare": compare, "success": success})
        return bool(data.get("succeeded")), int(data.get("header", {}).get("revision") or 0)

    def _put_op(self, rel: str, value: str, lease: str | None = None) -> Op:
        put: Op = {"key": b64(self._key(rel)), "value": b64(value)}
        if lease:
            put["lease"] = lease
        return {"request_put": put}

    def _del_op(self, rel: str) -> Op:
        return {"request_delete_range": {"key": b64(self._key(rel))}}

    def _cmp(self, rel: str, target: str, value: Any) -> Op:
        field = {"VALUE": "value", "MOD": "mod_revision", "CREATE": "create_revision",
                 "LEASE": "lease", "VERSION": "version"}[target]
        if target == "VALUE":
            value = b64(str(value))
        return {"key": b64(self._key(rel)), "target": target, "result": "EQUAL",
                field: str(value) if target != "VALUE" else value}

    def _put(self, rel: str, value: str, lease: str | None = None) -> int:
        data = self._call("/v3/kv/put", self._put_op(rel, value, lease)["request_put"])
        return int(data.get("header", {}).get("revision") or 0)

    def _put_if(self, rel: str, value: str, index: int | None, lease: str | None = None) -> int | None:
        """Create if absent (index None) or replace if unchanged since index."""
        cond = self._cmp(rel, "CREATE", 0) if index is None else self._cmp(rel, "MOD", index)
        ok, rev = self._txn([cond], [self._put_op(rel, value, lease)])
        return rev if ok else None

    def _delete_if(self, rel: str, compare: list[Op]) -> bool:
        ok, _ = self._txn(compare, [self._del_op(rel)])
        return ok

    # ---- leases --------------------------------------------------------------
    def _lease_for(self, ttl: int) -> str:
        """Our lease of `ttl` seconds, kept alive (once per cycle), or a new one."""
        with self._lock:
            now = time.monotonic()
            if self._lease is not None and self._lease_ttl == ttl:
                if now - self._lease_fresh < 1.0:
                    return self._lease
                data = self._call("/v3/lease/keepalive", {"ID": self._lease})
                result = data.get("result", data) if isinstance(data, dict) else {}
                if int(result.get("TTL") or 0) > 0:
                    self._lease_fresh = now
                    return self._lease
                log.info("etcd3: lease %s expired; taking a new one", self._lease)
            elif self._lease is not None:
                self._revoke()
            data = self._call("/v3/lease/grant", {"TTL": str(ttl)})
            self._lease, self._lease_ttl, self._lease_fresh = str(data["ID"]), ttl, now
            self._leader_rev = None
            return self._lease

    def _revoke(self) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        try:
            self._call("/v3/lease/revoke", {"ID": lease})
        except DcsError as exc:
            log.debug("etcd3: could not revoke lease %s: %s", lease, exc)

    # ---- reads ---------------------------------------------------------------
    def read_nodes(self) -> tuple[Nodes, int]:
        pre = self.prefix + "/"
        data = self._call("/v3/kv/range", {"key": b64(pre), "range_end": prefix_end(pre)})
        nodes: Nodes = {}
        seen: dict[str, tuple[str | None, str]] = {}
        for kv in data.get("kvs") or []:
            rel = unb64(kv.get("key"))[len(pre):]
            value = unb64(kv.get("value"))
            nodes[rel] = (value, int(kv.get("mod_revision") or 0))
            seen[rel] = (value, str(kv.get("lease") or "0"))
        self._seen = seen
        return nodes, int(data.get("header", {}).get("revision") or 0)

    def get_cluster(self) -> ClusterView:
        nodes, index = self.read_nodes()
        return build_view(nodes, index) if nodes else ClusterView(index=index)

    # ---- leader --------------------------------------------------------------
    def acquire_leader(self, ttl: int) -> bool:
        lease = self._lease_for(ttl)
        rev = self._put_if("leader", self.name, None, lease)
        with self._lock:
            self._leader_rev = rev
        return rev is not None

    def renew_leader(self, ttl: int) -> bool:
        lease = self._lease_for(ttl)
        compare = [self._cmp("leader", "VALUE", self.name)]
        if self._leader_rev is not None:
            compare.append(self._cmp("leader", "MOD", self._leader_rev))
        ok, rev = self._txn(compare, [self._put_op("leader", self.name, lease)])
        with self._lock:
            self._leader_rev = rev if ok else None
        return ok

    def release_leader(self) -> bool:
        self._leader_rev = None
        return self._delete_if("leader", [self._cmp("leader", "VALUE", self.name)])

    def evict_leader(self, name: str, index: int) -> bool:
        """Delete another member's lock, only if it was not renewed since `index`."""
        return self._delete_if("leader", [self._cmp("leader", "VALUE", name),
                                          self._cmp("leader", "MOD", index)])

    def hand_leader(self, target: str, ttl: int) -> bool:
        """Pass our lock to `target` (switchover); it stays on our lease until
        the target renews it on its own."""
        lease = self._lease_for(ttl)
        ok, _ = self._txn([self._cmp("leader", "VALUE", self.name)],
                          [self._put_op("leader", target, lease)])
        self._leader_rev = None
        return ok

    # ---- members -------------------------------------------------------------
    def touch_member(self, data: Mapping[str, Any], ttl: int) -> None:
        """Keep our lease alive; rewrite the key only when it changed (or is
        not on our lease any more)."""
        lease = self._lease_for(ttl)
        raw = dumps(dict(data))
        rel = f"members/{self.name}"
        if self._seen.get(rel) == (raw, lease):
            return
        self._put(rel, raw, lease)
        self._seen[rel] = (raw, lease)

    def delete_member(self) -> None:
        self._call("/v3/kv/deleterange", {"key": b64(self._key(f"members/{self.name}"))})
        self._seen.pop(f"members/{self.name}", None)

    # ---- initialize, config and the other keys ---------------------------------
    def take_initialize(self) -> bool:
        self._init_rev = self._put_if("initialize", "", None)
        return self._init_rev is not None

    def set_initialize(self, sysid: str) -> bool:
        return self._put_if("initialize", sysid, self._init_rev) is not None

    def clear_initialize(self, index: int | None = None) -> bool:
        index = index if index is not None else self._init_rev
        if index is None:
            return False
        return self._delete_if("initialize", [self._cmp("initialize", "MOD", index)])

    def write_config(self, config: Mapping[str, Any], index: int | None) -> bool:
        return self._put_if("config", dumps(dict(config)), index) is not None

    def write_status(self, optime: int, slots: Mapping[str, int],
                     retain: Sequence[str] | None = None) -> None:
        raw = status_json(optime, slots, retain)
        if self._seen.get("status", (None, ""))[0] != raw:
            self._put("status", raw)
            self._seen["status"] = (raw, "0")

    def write_sync(self, leader: str | None, standbys: tuple[str, ...], index: int | None,
                   quorum: int = 0) -> bool:
        value = sync_value(leader, standbys, quorum)
        return self._put_if("sync", value, index) is not None

    def delete_sync(self) -> bool:
        data = self._call("/v3/kv/deleterange", {"key": b64(self._key("sync"))})
        return int(data.get("deleted") or 0) > 0

    def write_failover(self, value: Mapping[str, Any], index: int | None = None) -> bool:
        raw = dumps(dict(value))
        if index is None:
            self._put("failover", raw)
            return True
        return self._put_if("failover", raw, index) is not None

    def clear_failover(self) -> bool:
        """Patroni clears the key by writing an empty object; so do we."""
        self._put("failover", "{}")
        return True

    def write_history(self, history: list[list[Any]]) -> None:
        self._put("history", dumps(history))

    def write_failsafe(self, members: Mapping[str, str]) -> None:
        self._put("failsafe", dumps(dict(members)))

    def wipe(self) -> bool:
        pre = self.prefix + "/"
        data = self._call("/v3/kv/deleterange", {"key": b64(pre), "range_end": prefix_end(pre)})
        return int(data.get("deleted") or 0) > 0

    # ---- watch ---------------------------------------------------------------
    def watch_leader(self, view: ClusterView, timeout: float, eager: bool = False) -> bool:
        """Block until the leader key changes hands or goes, or timeout.

        A renewal by the same leader rewrites the key with the same value;
        that does not wake us (unless `eager`)."""
        current = view.leader.name if view.leader else None
        start = max(view.index, view.leader.index if view.leader else 0) + 1
        deadline = time.monotonic() + timeout
        if not self.hosts:
            time.sleep(max(0.0, min(deadline - time.monotonic(), 0.5)))
            return False
        host = self.hosts[self._current % len(self.hosts)]
        try:
            return self._watch(host, start, current, eager, deadline)
        except (OSError, http.client.HTTPException, ValueError, DcsError, AuthError) as exc:
            log.debug("leader watch failed: %s", exc)
            time.sleep(max(0.0, min(deadline - time.monotonic(), 0.5)))
            return False

    def _connection(self, host: tuple[str, int], timeout: float) -> http.client.HTTPConnection:
        if self.protocol != "https":
            return http.client.HTTPConnection(host[0], host[1], timeout=timeout)
        ctx = ssl.create_default_context(cafile=self.cfg.get("cacert"))
        if not self.cfg.get("cacert"):
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        if self.cfg.get("cert"):
            ctx.load_cert_chain(self.cfg["cert"], self.cfg.get("key"))
        return http.client.HTTPSConnection(host[0], host[1], timeout=timeout, context=ctx)

    def _watch(self, host: tuple[str, int], start: int, current: str | None, eager: bool,
               deadline: float) -> bool:
        rest = deadline - time.monotonic()
        if rest <= 0.01:
            return False
        headers = {"Content-Type": "application/json"}
        if self.user:
            if self._token is None:
                self._authenticate(host, min(self.timeout, rest))
            headers["Authorization"] = self._token or ""
        body = {"create_request": {"key": b64(self._key("leader")), "start_revision": str(start)}}
        conn = self._connection(host, min(self.timeout, rest))
        try:
            conn.request("POST", "/v3/watch", body=json.dumps(body), headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                if resp.status == 401:
                    self._token = None
                time.sleep(max(0.0, min(deadline - time.monotonic(), 0.5)))
                return False
            while True:
                rest = deadline - time.monotonic()
                if rest <= 0.01:
                    return False
                if conn.sock is not None:
                    conn.sock.settimeout(rest)
                try:
                    line = resp.readline()
                except TimeoutError:
                    return False
                if not line:
                    return False
                if self._wakes(json.loads(line), current, eager):
                    return True
        finally:
            conn.close()

    @staticmethod
    def _wakes(message: Mapping[str, Any], current: str | None, eager: bool) -> bool:
        result = message.get("result") or {}
        if message.get("error") or result.get("canceled") or result.get("compact_revision"):
            return True  # the watch cannot go on from here: read the cluster again
        for ev in result.get("events") or []:
            if eager or ev.get("type") == "DELETE":
                return True
            if unb64((ev.get("kv") or {}).get("value")) != current:
                return True
        return False
