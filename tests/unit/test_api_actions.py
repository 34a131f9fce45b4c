"""Pure parts of the REST API's actions and views: validation, merging, JSON shapes."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from howdah.api.base import TextReply
from howdah.api.config_api import merge_patch, validate
from howdah.api.metrics import padded_version, render_metrics
from howdah.api.requests import check_restart_body, conditions_met, parse_timeout, version_number
from howdah.api.security import Guard, parse_allowlist
from howdah.core.status import NodeStatus
from howdah.api.switchover import check_request, parse_schedule
from howdah.api.views import ClusterRead, cluster_json, format_lsn
from howdah.core.models import ClusterView, Leader, Member

MB = 1 << 20
VIEW = ClusterView(
    initialize="123", config={"ttl": 30}, config_index=5, leader=Leader("n1", 10),
    members=(Member("n1", "primary", "running", "postgres://10.0.0.1:5432/postgres",
                    "http://10.0.0.1:8008/patroni", 100 * MB, 2),
             Member("n2", "replica", "running", "postgres://10.0.0.2:5433/postgres",
                    "http://10.0.0.2:8008/patroni", 99 * MB, 2, {"zone": "b"}),
             Member("n3", "replica", "stopped", "postgres://10.0.0.3:5432/postgres",
                    "http://10.0.0.3:8008/patroni")),
    optime=100 * MB,
)


def reply(exc: pytest.ExceptionInfo[TextReply]) -> tuple[int, str]:
    return exc.value.code, exc.value.message


# -- security -----------------------------------------------------------------

def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_guard_lets_reads_through_and_checks_writes() -> None:
    g = Guard.from_config({"authentication": {"username": "u", "password": "p"}})
    assert g.refusal("GET", "1.2.3.4", None) is None
    r = g.refusal("POST", "1.2.3.4", None)
    assert r is not None and r.code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="Howdah"'
    assert g.refusal("PATCH", "1.2.3.4", basic("u", "x")).code == 401  # type: ignore[union-attr]
    assert g.refusal("DELETE", "1.2.3.4", "Basic !!!") is not None
    assert g.refusal("PUT", "1.2.3.4", basic("u", "p")) is None


AUTH = {"authentication": {"username": "u", "password": "p"}}


def test_allowlist() -> None:
    g = Guard.from_config({"allowlist": ["10.0.0.0/8", "127.0.0.1"], **AUTH})
    assert g.refusal("POST", "10.1.2.3", basic("u", "p")) is None
    assert g.refusal("POST", "::ffff:127.0.0.1", basic("u", "p")) is None
    assert g.refusal("POST", "10.1.2.3", None).code == 401  # type: ignore[union-attr]
    assert g.refusal("POST", "192.168.1.1", basic("u", "p")).code == 403  # type: ignore[union-attr]
    assert g.refusal("GET", "192.168.1.1", None) is None


def test_unsafe_methods_are_refused_when_no_credentials_are_configured() -> None:
    for restapi in ({}, {"allowlist": ["0.0.0.0/0"]}, {"authentication": {}},
                    {"authentication": {"username": "", "password": None}}):
        g = Guard.from_config(restapi)
        for method in ("POST", "PUT", "PATCH", "DELETE", "post"):
            r = g.refusal(method, "127.0.0.1", basic("u", "p"))
            assert r is not None and r.code == 403 and "PATRONI_RESTAPI_USERNAME" in r.message
        assert g.refusal("GET", "127.0.0.1", None) is None
        assert g.refusal("GET", "127.0.0.1", None, sensitive=True) is None


@pytest.mark.parametrize("auth,field", [
    ({"username": "u"}, "restapi.authentication.password"),
    ({"username": "u", "password": ""}, "restapi.authentication.password"),
    ({"password": "p"}, "restapi.authentication.username"),
    ("u:p", "restapi.authentication"),
])
def test_half_configured_authentication_is_an_error(auth: object, field: str) -> None:
    with pytest.raises(ValueError) as info:
        Guard.from_config({"authentication": auth})
    assert str(info.value).startswith(field + ":") and "\n" not in str(info.value)


def test_auth_reads_guards_the_configuration_reads_only() -> None:
    g = Guard.from_config({"auth_reads": "true", **AUTH})
    r = g.refusal("GET", "1.2.3.4", None, sensitive=True)
    assert r is not None and r.code == 401
    assert g.refusal("GET", "1.2.3.4", basic("u", "x"), sensitive=True) is not None
    assert g.refusal("GET", "1.2.3.4", basic("u", "p"), sensitive=True) is None
    assert g.refusal("GET", "1.2.3.4", None) is None  # not a sensitive read
    assert Guard.from_config(AUTH).refusal("GET", "1.2.3.4", None, sensitive=True) is None
    with pytest.raises(ValueError, match="^restapi.auth_reads: needs restapi.authentication"):
        Guard.from_config({"auth_reads": True})
    with pytest.raises(ValueError, match="allowlist"):
        parse_allowlist(["not-an-ip"])


# -- switchover / failover ------------------------------------------------------

def test_switchover_request_becomes_the_failover_key() -> None:
    assert check_request("switchover", {"leader": "n1", "candidate": "n2"}, VIEW) == \
        ("switchover", {"leader": "n1", "member": "n2"})
    assert check_request("failover", {"member": "n3"}, VIEW) == ("failover", {"member": "n3"})
    assert check_request("failover", {"leader": "n1", "candidate": "n2"}, VIEW)[0] == "switchover"
    when = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    _, value = check_request("switchover", {"leader": "n1", "scheduled_at": when}, VIEW)
    assert value["scheduled_at"] == datetime.fromisoformat(when).isoformat()


@pytest.mark.parametrize("action,body,code,text", [
    ("failover", {"leader": "n1"}, 400, "only to a specific candidate"),
    ("switchover", {"candidate": "n2"}, 400, "only from a specific leader"),
    ("switchover", {"leader": "n1", "candidate": "n1"}, 400, "target and source are the same"),
    ("failover", {"candidate": "n1"}, 400, "already the leader"),
    ("failover", {"candidate": "n2", "scheduled_at": "2099-01-01T00:00:00+00:00"}, 400, "can't be scheduled"),
    ("switchover", {"leader": "n1", "scheduled_at": "2099-01-01T00:00:00"}, 400, "Timezone"),
    ("switchover", {"leader": "n1", "scheduled_at": "2001-01-01T00:00:00+00:00"}, 422, "in the past"),
    ("switchover", {"leader": "n1", "scheduled_at": "soon"}, 422, "Unable to parse"),
    ("switchover", {"leader": "n1", "scheduled_at": 12}, 422, "Unable to parse"),
    ("switchover", {"leader": "n2", "candidate": "n3"}, 412, "leader name does not match"),
    ("switchover", {"leader": "n1", "candidate": "n9"}, 412, "candidate does not exists"),
    ("switchover", {"leader": ["n1"]}, 400, "leader must be a string"),
])
def test_switchover_request_refused(action: str, body: dict[str, Any], code: int, text: str) -> None:
    with pytest.raises(TextReply) as exc:
        check_request(action, body, VIEW)
    assert exc.value.code == code and text in exc.value.message


def test_paused_cluster_needs_a_candidate_and_refuses_schedules() -> None:
    paused = ClusterView(config={"pause": True}, leader=Leader("n1", 1), members=VIEW.members)
    with pytest.raises(TextReply, match="paused"):
        check_request("switchover", {"leader": "n1"}, paused)
    with pytest.raises(TextReply, match="paused"):
        check_request("switchover", {"leader": "n1", "scheduled_at": "2099-01-01T00:00:00Z"}, paused)


def test_parse_schedule_accepts_z() -> None:
    assert parse_schedule("2099-01-01T00:00:00Z", "restart").tzinfo is not None


# -- restart ---------------------------------------------------------------------

def test_restart_body() -> None:
    assert check_restart_body({}) == {}
    opts = check_restart_body({"role": "replica", "postgres_version": "15.4", "timeout": "30s",
                               "restart_pending": True})
    assert opts == {"role": "replica", "postgres_version": "15.4", "timeout": 30.0, "restart_pending": True}
    for bad in ({"role": "boss"}, {"postgres_version": "x"}, {"timeout": -1}, {"timeout": True},
                {"foo": 1}, {"timeout": "soon"}):
        with pytest.raises(TextReply) as exc:
            check_restart_body(bad)
        assert exc.value.code == 400


def test_versions_and_timeouts() -> None:
    assert version_number("15.4") == 150004
    assert version_number("9.6.3") == 90603
    assert parse_timeout(5) == 5.0 and parse_timeout("2min") == 120.0


def test_restart_conditions() -> None:
    s = NodeStatus(role="replica", server_version=150004, pending_restart=False)
    assert conditions_met({}, s)
    assert not conditions_met({"role": "primary"}, s)
    assert not conditions_met({"restart_pending": True}, s)
    assert conditions_met({"postgres_version": "15.5"}, s)
    assert not conditions_met({"postgres_version": "15.4"}, s)


# -- config ----------------------------------------------------------------------

def test_merge_patch_merges_objects_and_deletes_nulls() -> None:
    base = {"ttl": 30, "pause": True, "postgresql": {"parameters": {"a": 1, "b": 2}, "use_slots": True}}
    patched = merge_patch(base, {"pause": None, "postgresql": {"parameters": {"b": None, "c": 3}},
                                 "new": {"x": None, "y": 1}})
    assert patched == {"ttl": 30, "postgresql": {"parameters": {"a": 1, "c": 3}, "use_slots": True},
                       "new": {"y": 1}}
    assert base["pause"] is True  # not modified in place


def test_validate_refuses_what_agents_would_reject() -> None:
    validate({"ttl": 30, "loop_wait": 10, "retry_timeout": 10})
    validate({"ttl": 20, "loop_wait": 2, "retry_timeout": 10})  # adjusted, as Patroni does
    for bad in ({"ttl": "x"}, {"loop_wait": True}, {"retry_timeout": [1]},
                {"postgresql": "no"}, {"postgresql": {"parameters": [1]}}):
        with pytest.raises(TextReply) as exc:
            validate(bad)
        assert exc.value.code == 400


# -- views -----------------------------------------------------------------------

def test_cluster_json() -> None:
    raw = {"n2": {"replication_state": "streaming", "xlog_location": 99 * MB}, "n3": {}}
    when = "2099-01-01T00:00:00+00:00"
    view = ClusterView(**{**VIEW.__dict__, "config": {"pause": True},
                          "failover": {"leader": "n1", "member": "n2", "scheduled_at": when}})
    doc = cluster_json(ClusterRead(view, raw), "demo", {"n3": {"schedule": when}})
    assert doc["scope"] == "demo" and doc["pause"] is True
    assert doc["scheduled_switchover"] == {"at": when, "from": "n1", "to": "n2"}
    n1, n2, n3 = doc["members"]
    assert n1 == {"name": "n1", "role": "leader", "state": "running", "api_url": "http://10.0.0.1:8008/patroni",
                  "host": "10.0.0.1", "port": 5432, "timeline": 2}
    assert n2["role"] == "replica" and n2["state"] == "streaming" and n2["lag"] == MB
    assert n2["lsn"] == format_lsn(99 * MB) and n2["tags"] == {"zone": "b"} and n2["port"] == 5433
    assert n3["state"] == "stopped" and n3["lag"] == "unknown" and "timeline" not in n3
    assert n3["scheduled_restart"] == {"schedule": when}
    standby = ClusterView(**{**VIEW.__dict__, "config": {"standby_cluster": {"host": "x"}}})
    assert cluster_json(ClusterRead(standby), "d")["members"][0]["role"] == "standby_leader"


def test_sync_standby_role() -> None:
    read = ClusterRead(VIEW, {}, frozenset({"n3"}))
    roles = [m["role"] for m in cluster_json(read, "d")["members"]]
    assert roles == ["leader", "replica", "sync_standby"]


def test_metrics_use_patroni_names_and_labels() -> None:
    s = NodeStatus(name="n1", scope="demo", state="running", role="primary", pg_running=True,
                   timeline=3, xlog_location=42, lease_deadline=100.0, last_loop=49.0, pause=True)
    text = render_metrics(lambda: s, lambda: 50.0).decode()
    labels = '{name="n1",scope="demo"}'
    for line in (f"patroni_postgres_running{labels} 1.0", f"patroni_primary{labels} 1.0",
                 f"patroni_replica{labels} 0.0", f"patroni_xlog_location{labels} 42.0",
                 f"patroni_postgres_timeline{labels} 3.0", f"patroni_is_paused{labels} 1.0",
                 f"patroni_cluster_unlocked{labels} 0.0", f"howdah_lease_valid{labels} 1.0",
                 f"howdah_ha_loop_age_seconds{labels} 1.0"):
        assert line in text, line
    assert padded_version("4.1.5") == 40105


def test_allowlist_include_members() -> None:
    from howdah.api.security import member_networks
    g = Guard.from_config({"allowlist": ["10.0.0.0/8"], "allowlist_include_members": True, **AUTH})
    members = member_networks(["http://127.0.0.2:8008/patroni", "http://[::1]:8008/patroni", "garbage"])
    ok = basic("u", "p")
    assert g.refusal("POST", "127.0.0.2", ok, members) is None
    assert g.refusal("POST", "::1", ok, members) is None
    assert g.refusal("POST", "10.9.9.9", ok, members) is None
    assert g.refusal("POST", "127.0.0.3", ok, members).code == 403  # type: ignore[union-attr]
    only_members = Guard.from_config({"allowlist_include_members": "on", **AUTH})
    assert only_members.refusal("POST", "192.168.0.1", ok, members) is not None


def test_a_required_client_certificate_is_the_authentication_when_no_credentials_are_set() -> None:
    g = Guard.from_config({"certfile": "/x.crt", "cafile": "/ca.crt", "verify_client": "required"})
    if not g.client_cert_required:
        pytest.skip("unsafe_needs_client_cert reads the config differently")
    assert g.refusal("POST", "1.2.3.4", None, client_cert=True) is None
    assert g.refusal("POST", "1.2.3.4", None, client_cert=False).code == 403  # type: ignore[union-attr]
    plain = Guard.from_config({})
    assert plain.refusal("POST", "1.2.3.4", None, client_cert=True).code == 403  # type: ignore[union-attr]
