"""Peers' GET /patroni during the leader race (2 s timeout, in parallel).

Over https a member presents ``ctl.certfile`` and checks its peers' chain as
Patroni does (see howdah.config.tls.member_client_context).
"""
from __future__ import annotations

import json
import logging
import ssl
import threading
from typing import Any, Mapping, Sequence

import urllib3

from howdah.core.models import Member, PeerStatus

log = logging.getLogger("howdah.peers")
TIMEOUT = 2.0


def make_pool(context: ssl.SSLContext | None = None) -> urllib3.PoolManager:
    """The pool peers are called through: ``context`` (from member_client_context)
    checks the peer's chain and presents our certificate; None checks nothing."""
    kw: dict[str, Any] = {"cert_reqs": "CERT_NONE"}
    if context is None:  # Patroni's member rule without ctl.certfile; do not warn per call
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    else:
        kw = {"ssl_context": context, "assert_hostname": False}
    return urllib3.PoolManager(num_pools=8, retries=False,
                               timeout=urllib3.Timeout(TIMEOUT, TIMEOUT), **kw)


def pool_from_config(restapi: Mapping[str, Any], ctl: Mapping[str, Any]) -> urllib3.PoolManager:
    """Raises howdah.config.tls.TlsConfigError (naming the field) for unreadable files."""
    from howdah.config.tls import member_client_context
    return make_pool(member_client_context(restapi, ctl))


_http = make_pool()
_failing: set[str] = set()  # peers whose last call failed (logged once per outage)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def parse_peer(name: str, body: Any) -> PeerStatus:
    if not isinstance(body, dict):
        return PeerStatus(name=name, reachable=False)
    raw_xlog, raw_tags = body.get("xlog"), body.get("tags")
    xlog: dict[str, Any] = raw_xlog if isinstance(raw_xlog, dict) else {}
    received = _int(xlog.get("received_location") or xlog.get("location"))
    replayed = _int(xlog.get("replayed_location") or xlog.get("location"))
    tags: dict[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}
    return PeerStatus(
        name=name, reachable=True, role=str(body.get("role", "")),
        running=body.get("state") == "running", timeline=_int(body.get("timeline")),
        received=received, replayed=replayed, tags=tags,
    )


def fetch_one(member: Member, pool: urllib3.PoolManager | None = None) -> PeerStatus:
    """Health endpoints answer 503 with a body too: any JSON answer counts."""
    try:
        resp = (pool or _http).request("GET", member.api_url, preload_content=True)
        body = json.loads(resp.data)
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        if member.name not in _failing:
            _failing.add(member.name)
            reason = str(getattr(exc, "reason", None) or exc).splitlines()[0]
            log.warning("peer %s: GET %s failed: %s", member.name, member.api_url, reason)
        return PeerStatus(name=member.name, reachable=False)
    if member.name in _failing:
        _failing.discard(member.name)
        log.info("peer %s: GET %s answers again", member.name, member.api_url)
    return parse_peer(member.name, body)


def fetch_peers(members: Sequence[Member], me: str,
                pool: urllib3.PoolManager | None = None) -> tuple[PeerStatus, ...]:
    others = [m for m in members if m.name != me and m.api_url]
    results: list[PeerStatus] = [PeerStatus(name=m.name, reachable=False) for m in others]

    def one(i: int) -> None:
        results[i] = fetch_one(others[i], pool)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(others))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT + 1)
    return tuple(results)

