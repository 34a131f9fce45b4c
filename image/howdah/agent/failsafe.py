"""DCS failsafe mode (``failsafe_mode: true``), both sides of ``POST /failsafe``.

The leader: while the DCS cannot be reached, every cycle it asks each member of
the last ``/failsafe`` key it read ``POST /failsafe`` ({name, conn_url, api_url})
with the REST credentials (``ctl.authentication``, else ``restapi.authentication``)
and, over https, the member client certificate (the peers' pool).  Only when
every one answers 200 ``Accepted`` does the round count as a renewal: the lease
deadline (and so the fence's) moves to the time the round was *sent* plus ttl,
less the usual margin.  A member that does not answer stops the renewals, and
the leader demotes once the last one is older than loop_wait + retry_timeout,
exactly as without failsafe.

A replica: a ``POST /failsafe`` from a member that is not running as the primary
here is recorded; for ttl seconds after it, this node follows that leader and
takes no part in a leader race (core/failsafe.py), since the leader counts on
that promise when it keeps its primary running without the DCS.

Slots: as Patroni 4.1.5 does (observed: its body carries ``slots``, the same
{slot: lsn} map it writes to /status), the leader sends its slot positions in
every round, and a replica advances its copies of the permanent and member
slots from them while /status cannot be read (agent/ha.py, core/failsafe.py).

Why a refused round does not demote at once (Patroni 4.1.5 does): every member
that accepted a round promised, when the call reached it (after the round was
sent), to follow this leader and not race for ttl.  A round that is not
confirmed by all moves nothing, so the lease and the fence deadline stay at
the last fully confirmed round's send time + ttl - retry_timeout/2, and the
leader demotes at send time + loop_wait + retry_timeout: both before any
member's promise ends.  A single lost answer costs no demotion; a member that
is really gone demotes the leader within loop_wait + retry_timeout.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import urllib3

log = logging.getLogger("howdah.failsafe")
TIMEOUT = 2.0


def endpoint(api_url: str) -> str:
    """http://h:p/patroni -> http://h:p/failsafe (as Patroni builds it)."""
    parts = urlsplit(api_url)
    return urlunsplit((parts.scheme, parts.netloc, "/failsafe", "", ""))


def auth_headers(restapi: Mapping[str, Any], ctl: Mapping[str, Any]) -> dict[str, str]:
    """Basic authentication of ctl.authentication, else restapi.authentication."""
    for section in (ctl, restapi):
        auth = section.get("authentication") if isinstance(section, Mapping) else None
        if isinstance(auth, Mapping) and auth.get("username"):
            return dict(urllib3.make_headers(
                basic_auth=f"{auth['username']}:{auth.get('password') or ''}"))
    return {}


def slot_positions(value: Any) -> dict[str, int]:
    """{slot: lsn} from a POST /failsafe body's ``slots``; anything else is dropped
    (a leader of another version may send none, or a malformed map)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): int(v) for k, v in value.items()
            if isinstance(v, int) and not isinstance(v, bool) and v > 0}


@dataclass(frozen=True)
class Round:
    """One round of POST /failsafe calls."""

    ok: bool
    answered: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)  # member -> why
    lsns: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.ok:
            who = ", ".join(self.answered) or "no other member"
            return f"confirmed by {who}"
        return "; ".join(f"{n}: {why}" for n, why in sorted(self.refused.items()))


def _call(pool: urllib3.PoolManager, url: str, body: bytes,
          headers: Mapping[str, str]) -> tuple[bool, str, int | None]:
    try:
        resp = pool.request("POST", url, body=body, headers={
            **headers, "Content-Type": "application/json"},
            timeout=urllib3.Timeout(TIMEOUT, TIMEOUT),
            retries=urllib3.Retry(total=1, connect=1, read=0, status=0, redirect=False))
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = str(getattr(exc, "reason", None) or exc).splitlines()[0]
        return False, f"no answer ({reason})", None
    text = resp.data.decode("utf-8", "replace").strip()
    try:
        lsn = int(resp.headers.get("lsn", ""))
    except ValueError:
        lsn = None
    if resp.status == 200 and text == "Accepted":
        return True, text, lsn
    return False, f"{resp.status} {text[:80]}", lsn


def confirm(members: Mapping[str, str], me: str, body: Mapping[str, Any],
            pool: urllib3.PoolManager, headers: Mapping[str, str]) -> Round:
    """POST /failsafe to every member but me, in parallel; ok when all accept.
    A /failsafe key without my name proves nothing: not ok."""
    if me not in members:
        return Round(False, refused={me: "this node is not in the /failsafe key"})
    others = sorted((n, u) for n, u in members.items() if n != me)
    data = json.dumps(dict(body)).encode()
    results: dict[str, tuple[bool, str, int | None]] = {
        n: (False, "no answer (timed out)", None) for n, _ in others}

    def one(name: str, url: str) -> None:
        results[name] = _call(pool, endpoint(url), data, headers)

    threads = [threading.Thread(target=one, args=o, daemon=True) for o in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * TIMEOUT + 1)
    refused = {n: why for n, (ok, why, _) in results.items() if not ok}
    lsns = {n: lsn for n, (_, _, lsn) in results.items() if lsn is not None}
    return Round(not refused, tuple(n for n, _ in others if n not in refused), refused, lsns)


class Failsafe:
    """This node's failsafe state, shared by the HA loop and the REST API."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._pinged_at: float | None = None  # replica: last POST /failsafe accepted
        self._leader: dict[str, str] = {}
        self._slots: dict[str, int] = {}  # the leader's slot positions, from its body
        self.leading_until: float | None = None  # leader: failsafe active until
        self.last_round: Round | None = None

    # ---- replica side (REST API thread) ------------------------------------
    def accept(self, body: Mapping[str, Any]) -> None:
        with self._lock:
            self._pinged_at = self.clock()
            self._leader = {k: str(body.get(k) or "") for k in ("name", "conn_url", "api_url")}
            self._slots = slot_positions(body.get("slots"))

    def slots(self) -> dict[str, int]:
        """The slot positions of the last POST /failsafe ({} without any)."""
        with self._lock:
            return dict(self._slots)

    def leader(self, ttl: float) -> str | None:
        """The member that pinged us within ttl, or None."""
        with self._lock:
            if self._pinged_at is None or self.clock() - self._pinged_at >= ttl:
                return None
            return self._leader.get("name") or None

    # ---- leader side (HA loop) ---------------------------------------------
    def confirmed(self, sent: float, ttl: float, rnd: Round) -> None:
        self.last_round = rnd
        self.leading_until = sent + ttl if rnd.ok else None

    def reset(self) -> None:
        """The DCS answers again: failsafe mode is over for the leader."""
        self.leading_until = None
        self.last_round = None

    def active(self, ttl: float) -> bool:
        """failsafe_mode_is_active as GET /patroni and the metric report it."""
        now = self.clock()
        if self.leading_until is not None and now < self.leading_until:
            return True
        return self.leader(ttl) is not None
