"""etcd v2 backend on python-etcd, with failover across several etcd hosts."""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Mapping, Sequence, TypeVar

from howdah.dcs import _nodns  # noqa: F401  (before python-etcd)
import etcd
import urllib3
import urllib3.exceptions
import urllib3.util

from howdah.core.models import ClusterView
from howdah.dcs.base import Capabilities, DcsError, Nodes, build_view, dumps, status_json, \
    sync_value
from howdah.dcs import srv
from howdah.dcs.endpoints import hosts_desc, parse_hosts, url_credentials

log = logging.getLogger(__name__)
logging.getLogger("etcd.client").setLevel(logging.CRITICAL)  # we log failures ourselves
T = TypeVar("T")
CONNECTION_ERRORS = (
    etcd.EtcdConnectionFailed,
    urllib3.exceptions.HTTPError,
    OSError,
)


class EtcdV2:
    """The key layout of CONTRACT §2 on etcd's v2 API."""

    capabilities = Capabilities(leases=False, watch_expiry=True, recursive_read=True)

    def __init__(
        self,
        cfg: Mapping[str, Any],
        namespace: str,
        scope: str,
        name: str,
        request_timeout: float = 2.0,
    ) -> None:
        protocol, hosts = parse_hosts(cfg)
        self.prefix = "/" + "/".join(p for p in (namespace.strip("/"), scope) if p)
        self.name = name
        self.timeout = request_timeout
        auth: dict[str, Any] = {}
        user, password = url_credentials(cfg)
        if user:
            auth = {"username": user, "password": password}
        tls: dict[str, Any] = {}
        if cfg.get("cacert"):
            tls["ca_cert"] = cfg["cacert"]
        if cfg.get("cert"):
            tls["cert"] = (cfg["cert"], cfg["key"]) if cfg.get("key") else cfg["cert"]
        self._tls, self._auth, self.cfg = tls, auth, dict(cfg)
        self.protocol = protocol
        self._clients = self._make_clients(hosts)
        self._current = 0
        self._init_index: int | None = None
        self.hosts = hosts
        self.where = hosts_desc(hosts)
        # `srv` (Spilo's ETCD_DISCOVERY_DOMAIN) when no host is listed: looked up now and
        # again whenever no known host answers (howdah/dcs/srv.py)
        self.srv = None if any(cfg.get(k) for k in ("host", "hosts", "url", "proxy")) else cfg.get("srv")
        self._srv_tried = -srv.RETRY_AFTER
        if self.srv:
            self.hosts, self._clients = [], []
            self._rediscover()

    def _make_clients(self, hosts: list[tuple[str, int]]) -> list[Any]:
        clients = [
            etcd.Client(
                host=h, port=p, protocol=self.protocol, read_timeout=self.timeout,
                allow_reconnect=False, **self._auth, **self._tls,
            )
            for h, p in hosts
        ]
        for client in clients:
            # one attempt per request: we move on to the next host ourselves,
            # and a leader must learn of a dead DCS within its retry budget
            client.http = urllib3.PoolManager(
                num_pools=10, retries=urllib3.util.Retry(total=0, read=0, connect=0,
                                                         redirect=2, raise_on_redirect=False),
                **self._pool_kw(self.cfg))
        return clients

    def _rediscover(self) -> bool:
        """Look the SRV records up again (at most every srv.RETRY_AFTER s); True when hosts
        are known afterwards. A failed lookup keeps the hosts known so far."""
        if not self.srv or time.monotonic() - self._srv_tried < srv.RETRY_AFTER:
            return bool(self.hosts)
        self._srv_tried = time.monotonic()
        found = srv.lookup_again(str(self.srv), str(self.cfg.get("srv_suffix") or ""), self.hosts)
        if found:
            protocol, hosts = found
            self.protocol = str(self.cfg.get("protocol") or protocol)
            clients = self._make_clients(hosts)
            self.hosts, self._clients, self._current = hosts, clients, 0
            self.where = f"{hosts_desc(hosts)} from SRV {self.srv}"
        return bool(self.hosts)

    @staticmethod
    def _pool_kw(cfg: Mapping[str, Any]) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if cfg.get("cacert"):
            kw.update(cert_reqs="CERT_REQUIRED", ca_certs=cfg["cacert"])
        if cfg.get("cert"):
            kw.update(cert_file=cfg["cert"], key_file=cfg.get("key"))
        return kw

    def set_timeout(self, request_timeout: float) -> None:
        self.timeout = request_timeout
        for c in self._clients:
            c._read_timeout = request_timeout  # python-etcd offers no setter

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def _call(self, fn: Callable[[Any], T]) -> T:
        """Run fn(client) on the current host, moving on to the next on failure."""
        last: Exception | None = None
        if not self._clients and not self._rediscover():
            raise DcsError(f"etcd: DNS has no SRV record {srv.names(str(self.srv), str(self.cfg.get('srv_suffix') or ''))} (yet)")
        clients = self._clients
        for attempt in range(len(clients)):
            client = clients[(self._current + attempt) % len(clients)]
            try:
                result = fn(client)
            except CONNECTION_ERRORS as exc:
                last = exc
                continue
            except etcd.EtcdException as exc:
                if "timed out" in str(exc).lower() or "connection" in str(exc).lower():
                    last = exc
                    continue
                raise
            self._current = (self._current + attempt) % len(clients)
            return result
        self._current = (self._current + 1) % len(clients)
        where = self.where
        self._rediscover()  # the next call may find other members behind the domain
        raise DcsError(f"etcd unreachable ({where}): {last}")

    def read_nodes(self) -> tuple[Nodes, int]:
        """One recursive read: {key relative to the prefix: (value, modifiedIndex)}
        and the etcd index; empty when the cluster has no keys yet."""
        try:
            result = self._call(lambda c: c.read(self.prefix, recursive=True, timeout=self.timeout))
        except etcd.EtcdKeyNotFound:
            return {}, 0
        nodes: Nodes = {}
        for node in result.leaves:
            if node.key is None or node.dir:
                continue
            rel = node.key[len(self.prefix) + 1:]
            nodes[rel] = (node.value, int(node.modifiedIndex or 0))
        return nodes, int(result.etcd_index or 0)

    def get_cluster(self) -> ClusterView:
        nodes, index = self.read_nodes()
        return build_view(nodes, index) if nodes else ClusterView()

    def _write(self, rel: str, value: str, **kw: Any) -> bool:
        return self._write_index(rel, value, **kw) is not None

    def _write_index(self, rel: str, value: str, **kw: Any) -> int | None:
        """Write; the new modifiedIndex, or None when a condition failed."""
        try:
            res = self._call(lambda c: c.write(self._key(rel), value, timeout=self.timeout, **kw))
            return int(res.modifiedIndex or 0)
        except (etcd.EtcdAlreadyExist, etcd.EtcdCompareFailed, etcd.EtcdKeyNotFound):
            return None

    def _delete(self, rel: str, **kw: Any) -> bool:
        try:
            self._call(lambda c: c.delete(self._key(rel), timeout=self.timeout, **kw))
            return True
        except (etcd.EtcdCompareFailed, etcd.EtcdKeyNotFound):
            return False

    def acquire_leader(self, ttl: int) -> bool:
        return self._write("leader", self.name, ttl=ttl, prevExist=False)

    def renew_leader(self, ttl: int) -> bool:
        return self._write("leader", self.name, ttl=ttl, prevValue=self.name)

    def evict_leader(self, name: str, index: int) -> bool:
        """Delete another member's lock, only if it was not renewed since `index`."""
        return self._delete("leader", prevValue=name, prevIndex=index)

    def hand_leader(self, target: str, ttl: int) -> bool:
        """Pass our lock straight to `target` (switchover), by compare-and-swap."""
        return self._write("leader", target, ttl=ttl, prevValue=self.name)

    def write_failover(self, value: Mapping[str, Any], index: int | None = None) -> bool:
        raw = json.dumps(dict(value), separators=(",", ":"))
        if index is None:
            return self._write("failover", raw)
        return self._write("failover", raw, prevIndex=index)

    def clear_failover(self) -> bool:
        """Patroni clears the key by writing an empty object; so do we."""
        return self._write("failover", "{}")

    def release_leader(self) -> bool:
        return self._delete("leader", prevValue=self.name)

    def touch_member(self, data: Mapping[str, Any], ttl: int) -> None:
        self._write(f"members/{self.name}", json.dumps(data, separators=(",", ":")), ttl=ttl)

    def delete_member(self) -> None:
        self._delete(f"members/{self.name}")

    # etcd v2 refuses an empty prevValue, so the "" placeholder written while
    # bootstrapping is guarded by its modifiedIndex instead.
    def take_initialize(self) -> bool:
        self._init_index = self._write_index("initialize", "", prevExist=False)
        return self._init_index is not None

    def set_initialize(self, sysid: str) -> bool:
        if self._init_index is None:
            return self._write("initialize", sysid, prevExist=False)
        return self._write("initialize", sysid, prevIndex=self._init_index)

    def clear_initialize(self, index: int | None = None) -> bool:
        index = index if index is not None else self._init_index
        if index is None:
            return False
        return self._delete("initialize", prevIndex=index)

    def write_config(self, config: Mapping[str, Any], index: int | None) -> bool:
        raw = json.dumps(config, separators=(",", ":"))
        if index is None:
            return self._write("config", raw, prevExist=False)
        return self._write("config", raw, prevIndex=index)

    def write_status(self, optime: int, slots: Mapping[str, int],
                     retain: Sequence[str] | None = None) -> None:
        self._write("status", status_json(optime, slots, retain))

    def write_sync(self, leader: str | None, standbys: tuple[str, ...], index: int | None,
                   quorum: int = 0) -> bool:
        """The sync key, by compare-and-swap on its index (None: create it)."""
        value = sync_value(leader, standbys, quorum)
        if index is None:
            return self._write("sync", value, prevExist=False)
        return self._write("sync", value, prevIndex=index)

    def delete_sync(self) -> bool:
        return self._delete("sync")

    def write_history(self, history: list[list[Any]]) -> None:
        self._write("history", json.dumps(history, separators=(",", ":")))

    def write_failsafe(self, members: Mapping[str, str]) -> None:
        self._write("failsafe", dumps(dict(members)))

    def wipe(self) -> bool:
        """Delete every key of the cluster; False when there was none."""
        try:
            self._call(lambda c: c.delete(self.prefix, recursive=True, dir=True,
                                          timeout=self.timeout))
            return True
        except etcd.EtcdKeyNotFound:
            return False

    def watch_leader(self, view: ClusterView, timeout: float, eager: bool = False) -> bool:
        """Block until the leader key changes hands or goes, or timeout.

        A renewal by the same leader rewrites the key; that is not a change
        worth waking for (unless `eager`: a node waiting for the leader to
        become ready), so the watch goes on from the new index.
        """
        current = view.leader.name if view.leader else None
        index = (view.leader.index if view.leader else view.index) + 1
        deadline = time.monotonic() + timeout
        clients = self._clients
        if not clients:
            time.sleep(max(0.0, min(timeout, 0.5)))
            return False
        client = clients[self._current % len(clients)]
        while True:
            rest = deadline - time.monotonic()
            if rest <= 0.01:
                return False
            try:
                ev = client.read(self._key("leader"), wait=True, waitIndex=index, timeout=rest)
            except etcd.EtcdWatchTimedOut:
                return False
            except etcd.EtcdEventIndexCleared:
                return True
            except (etcd.EtcdException, *CONNECTION_ERRORS) as exc:
                log.debug("leader watch failed: %s", exc)
                time.sleep(max(0.0, min(deadline - time.monotonic(), 0.5)))
                return False
            if eager or ev.action in ("expire", "delete", "compareAndDelete") or ev.value != current:
                return True
            index = int(ev.modifiedIndex) + 1

