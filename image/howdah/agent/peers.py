"""Peers' GET /patroni during the leader race (2 s timeout, in parallel)."""
from __future__ import annotations

import json
import threading
from typing import Any, Sequence

import urllib3

from howdah.core.models import Member, PeerStatus

TIMEOUT = 2.0
_http = urllib3.PoolManager(num_pools=8, retries=False, timeout=urllib3.Timeout(TIMEOUT, TIMEOUT),
                            cert_reqs="CERT_NONE")


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


def fetch_one(member: Member) -> PeerStatus:
    """Health endpoints answer 503 with a body too: any JSON answer counts."""
    try:
        resp = _http.request("GET", member.api_url, preload_content=True)
        body = json.loads(resp.data)
    except (urllib3.exceptions.HTTPError, OSError, ValueError):
        return PeerStatus(name=member.name, reachable=False)
    return parse_peer(member.name, body)


def fetch_peers(members: Sequence[Member], me: str) -> tuple[PeerStatus, ...]:
    others = [m for m in members if m.name != me and m.api_url]
    results: list[PeerStatus] = [PeerStatus(name=m.name, reachable=False) for m in others]

    def one(i: int) -> None:
        results[i] = fetch_one(others[i])

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(others))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT + 1)
    return tuple(results)

