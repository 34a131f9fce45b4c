"""Failsafe mode: the decision rules (core/failsafe.py) as table rows, and the
leader's POST /failsafe round (agent/failsafe.py) against small loopback servers."""
from __future__ import annotations

import base64
from dataclasses import replace
import http.server
import threading
from typing import Any, Iterator

import pytest
import urllib3

from howdah.agent.failsafe import Failsafe, Round, auth_headers, confirm, endpoint
from howdah.core.decide import decide
from howdah.core.failsafe import slot_view
from howdah.core.models import (
    ClusterView, DataState, Leader, LocalState, Member, PeerStatus, PgStatus,
)
from howdah.core.settings import Settings
from howdah.core.transitions import Goal, Reason

ON = Settings(ttl=30, loop_wait=10, retry_timeout=10, failsafe_mode=True)
OFF = Settings(ttl=30, loop_wait=10, retry_timeout=10)
NOW = 1000.0
PRIMARY = PgStatus(data=DataState.PRIMARY, running=True, in_recovery=False, sysid="42",
                   timeline=1, wal_position=100, replayed=100)
REPLICA = PgStatus(data=DataState.REPLICA, running=True, in_recovery=True, sysid="42",
                   timeline=1, wal_position=100, replayed=100, upstream_host="a:5432")
MEMBERS = tuple(Member(name=n, role="replica", state="running",
                       conn_url=f"postgres://{n}:5432/postgres",
                       api_url=f"http://{n}:8008/patroni") for n in "abc")


def view(leader: str | None, failsafe: dict[str, str] | None) -> ClusterView:
    return ClusterView(initialize="42", leader=Leader(leader, 5) if leader else None,
                       members=MEMBERS, optime=100, failsafe=failsafe)


FS = {n: f"http://{n}:8008/patroni" for n in "abc"}
CASES = [
    # (id, view, local, settings, now, goal, reason)
    ("confirmed primary keeps running without the DCS", view("a", FS),
     LocalState(name="a", pg=PRIMARY, dcs_ok=False, last_renew=NOW - 1,
                failsafe="confirmed by b, c"), ON, NOW, Goal.KEEP_WAITING, Reason.FAILSAFE),
    ("unconfirmed primary demotes at the usual point", view("a", FS),
     LocalState(name="a", pg=PRIMARY, dcs_ok=False, last_renew=NOW - 25), ON, NOW,
     Goal.DEMOTE, Reason.DCS_UNREACHABLE),
    ("unconfirmed primary within its lease retries", view("a", FS),
     LocalState(name="a", pg=PRIMARY, dcs_ok=False, last_renew=NOW - 5), ON, NOW,
     Goal.KEEP_WAITING, Reason.DCS_RETRYING),
    ("failsafe off: the confirmation is ignored", view("a", FS),
     LocalState(name="a", pg=PRIMARY, dcs_ok=False, last_renew=NOW - 25,
                failsafe="confirmed by b, c"), OFF, NOW, Goal.DEMOTE, Reason.DCS_UNREACHABLE),
    ("a pinged replica does not race", view(None, FS),
     LocalState(name="b", pg=REPLICA, failsafe_leader="a"), ON, NOW,
     Goal.STAY_BEHIND, Reason.FAILSAFE),
    ("a member missing from /failsafe does not race", view(None, {"a": FS["a"]}),
     LocalState(name="b", pg=REPLICA), ON, NOW, Goal.STAY_BEHIND, Reason.NOT_IN_FAILSAFE),
    ("a listed member races", view(None, FS), LocalState(name="b", pg=REPLICA), ON, NOW,
     Goal.RACE, Reason.HEALTHIEST),
    ("no /failsafe key: the usual race", view(None, None), LocalState(name="b", pg=REPLICA),
     ON, NOW, Goal.RACE, Reason.HEALTHIEST),
    ("failsafe off: a missing member races", view(None, {"a": FS["a"]}),
     LocalState(name="b", pg=REPLICA, failsafe_leader="a"), OFF, NOW,
     Goal.RACE, Reason.HEALTHIEST),
    ("the primary takes its key back after the outage", view(None, FS),
     LocalState(name="a", pg=PRIMARY, last_renew=NOW - 2), ON, NOW, Goal.RACE, Reason.HEALTHIEST),
]
REPLICA_READ_LATER = PeerStatus(name="b", reachable=True, role="replica", running=True,
                                timeline=1, received=180, replayed=180)
NEWER_TIMELINE = PeerStatus(name="b", reachable=True, role="primary", running=True,
                            timeline=2, received=50, replayed=50)


def test_a_replica_read_after_our_snapshot_does_not_demote_the_primary() -> None:
    loc = LocalState(name="a", pg=PRIMARY, last_renew=NOW - 2)
    d = decide(view(None, FS), loc, (REPLICA_READ_LATER,), ON, NOW)
    assert (d.goal, d.reason) == (Goal.RACE, Reason.HEALTHIEST), d.detail
    d = decide(view(None, FS), loc, (NEWER_TIMELINE,), ON, NOW)
    assert (d.goal, d.reason) == (Goal.DEMOTE, Reason.PEER_AHEAD), d.detail


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_failsafe_decisions(case: tuple) -> None:  # type: ignore[type-arg]
    _, v, loc, settings, now, goal, reason = case
    d = decide(v, loc, (), settings, now)
    assert (d.goal, d.reason) == (goal, reason), d.detail


def test_endpoint_and_auth_headers() -> None:
    assert endpoint("https://10.0.0.1:8008/patroni") == "https://10.0.0.1:8008/failsafe"
    token = base64.b64encode(b"u:p").decode()
    assert auth_headers({"authentication": {"username": "u", "password": "p"}}, {}) == {
        "authorization": f"Basic {token}"}
    ctl = {"authentication": {"username": "c", "password": "d"}}
    assert auth_headers({"authentication": {"username": "u", "password": "p"}}, ctl) == {
        "authorization": "Basic " + base64.b64encode(b"c:d").decode()}
    assert auth_headers({}, {}) == {}


def test_the_replica_side_holds_for_ttl() -> None:
    t = [100.0]
    fs = Failsafe(lambda: t[0])
    assert fs.leader(30) is None and not fs.active(30)
    fs.accept({"name": "a", "conn_url": "postgres://a/postgres", "api_url": "http://a/patroni"})
    t[0] = 129.0
    assert fs.leader(30) == "a" and fs.active(30)
    t[0] = 130.0
    assert fs.leader(30) is None and not fs.active(30)


def test_the_replica_keeps_the_slot_positions_the_leader_sent() -> None:
    """Patroni 4.1.5's body carries {slot: lsn} in "slots" (seen on the wire); a
    replica keeps the last map and puts it over /status in the view its slots
    follow, with the pinging member as the leader."""
    fs = Failsafe(lambda: 100.0)
    assert fs.slots() == {}
    fs.accept({"name": "a", "slots": {"perm_log": 500, "b": 400, "bad": "x", "t": True}})
    assert fs.slots() == {"perm_log": 500, "b": 400}
    fs.accept({"name": "a"})  # a leader that sends none: nothing to advance to
    assert fs.slots() == {}
    old = replace(view(None, FS), slots={"perm_log": 300, "perm_phys": 200})
    seen = slot_view(old, "a", {"perm_log": 500})
    assert seen.leader is not None and seen.leader.name == "a"
    assert seen.slots == {"perm_log": 500, "perm_phys": 200}
    assert seen.members == old.members
    held = slot_view(view("a", FS), "a", {})
    assert held.leader == Leader("a", 5)


def test_the_leader_side_is_active_until_sent_plus_ttl() -> None:
    t = [100.0]
    fs = Failsafe(lambda: t[0])
    fs.confirmed(100.0, 30, Round(True, ("b",)))
    t[0] = 129.0
    assert fs.active(30)
    fs.confirmed(129.0, 30, Round(False, refused={"b": "no answer"}))
    assert not fs.active(30)
    fs.confirmed(129.0, 30, Round(True, ("b",)))
    fs.reset()
    assert not fs.active(30)


class _Member(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, str] = (200, "Accepted")
    seen: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.path, self.headers.get("Authorization") or "", body))
        code, text = self.answer
        self.send_response(code)
        self.send_header("lsn", "1234")
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def members() -> Iterator[dict[str, Any]]:
    servers: dict[str, Any] = {}
    for name, answer in (("b", (200, "Accepted")), ("c", (500, "Running as a leader"))):
        handler = type(f"H{name}", (_Member,), {"answer": answer, "seen": []})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers[name] = srv
    yield servers
    for srv in servers.values():
        srv.shutdown()
        srv.server_close()


def _url(srv: Any) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/patroni"


def test_a_round_needs_every_member(members: dict[str, Any]) -> None:
    pool = urllib3.PoolManager()
    headers = auth_headers({"authentication": {"username": "u", "password": "p"}}, {})
    body = {"name": "a", "conn_url": "postgres://a/postgres", "api_url": "http://a/patroni"}
    ok = confirm({"a": "x", "b": _url(members["b"])}, "a", body, pool, headers)
    assert ok.ok and ok.answered == ("b",) and ok.lsns == {"b": 1234}
    path, auth, sent = members["b"].RequestHandlerClass.seen[-1]
    assert path == "/failsafe" and auth.startswith("Basic ") and b'"name": "a"' in sent
    bad = confirm({"a": "x", "b": _url(members["b"]), "c": _url(members["c"])}, "a", body,
                  pool, headers)
    assert not bad.ok and set(bad.refused) == {"c"} and "Running as a leader" in bad.summary()
    gone = confirm({"a": "x", "d": "http://127.0.0.1:1/patroni"}, "a", body, pool, headers)
    assert not gone.ok and "no answer" in gone.refused["d"]
    assert confirm({"a": "x"}, "a", body, pool, headers).ok  # a one-node cluster
    assert not confirm({"b": _url(members["b"])}, "a", body, pool, headers).ok  # not listed
