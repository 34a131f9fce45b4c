"""howdahctl output: the member table, lag, roles, history and DSNs, from plain data."""
from __future__ import annotations

import json
from typing import Any

from howdah.ctl.dcs import Snapshot
from howdah.ctl.dsn import dsn_of
from howdah.ctl.history import history_rows
from howdah.ctl.listing import member_rows, render
from howdah.ctl.query import render_rows
from howdah.ctl.ui import render_table
from howdah.core.models import Member
from howdah.dcs.base import build_view

MB = 1024 * 1024


def member(name: str, port: int, **extra: Any) -> str:
    data = {"conn_url": f"postgres://10.0.0.{port % 10}:{port}/postgres",
            "api_url": f"http://10.0.0.{port % 10}:8008/patroni", "state": "running",
            "role": "replica", "timeline": 3, **extra}
    return json.dumps(data)


def snapshot(config: dict[str, Any] | None = None, sync: dict[str, Any] | None = None,
             failover: dict[str, Any] | None = None) -> Snapshot:
    nodes: dict[str, tuple[str | None, int]] = {
        "leader": ("n1", 10),
        "initialize": ("7000000000000000001", 2),
        "status": (json.dumps({"optime": 50 * MB}), 11),
        "members/n1": (member("n1", 5431, role="primary", xlog_location=50 * MB), 12),
        "members/n2": (member("n2", 5432, xlog_location=40 * MB,
                              replication_state="streaming",
                              tags={"nofailover": True, "zone": "b"}), 13),
        "members/n3": (member("n3", 5433, state="starting"), 14),
        "config": (json.dumps(config or {}), 5),
        "failover": (json.dumps(failover or {}), 6),
    }
    view = build_view(nodes, 20)
    data = {k.split("/")[1]: json.loads(v or "{}") for k, (v, _) in nodes.items()
            if k.startswith("members/")}
    return Snapshot(view=view, scope="demo", member_data=data, sync=sync or {})


def test_rows_have_roles_lag_and_states() -> None:
    rows = {r["member"]: r for r in member_rows(snapshot())}
    assert rows["n1"]["role"] == "Leader" and rows["n1"]["lag_mb"] == ""
    assert rows["n2"]["role"] == "Replica" and rows["n2"]["lag"] == 10 * MB
    assert rows["n2"]["lag_mb"] == 10 and rows["n2"]["state"] == "streaming"
    assert rows["n3"]["lag_mb"] == "unknown" and rows["n3"]["state"] == "starting"
    assert rows["n1"]["host"] == "10.0.0.1:5431" and rows["n1"]["timeline"] == 3


def test_sync_standby_only_from_the_current_leaders_sync_key() -> None:
    rows = {r["member"]: r for r in member_rows(snapshot(sync={"leader": "n1",
                                                               "sync_standby": "n2,n3"}))}
    assert rows["n2"]["role"] == rows["n3"]["role"] == "Sync Standby"
    stale = {r["member"]: r for r in member_rows(snapshot(sync={"leader": "n9",
                                                                "sync_standby": "n2"}))}
    assert stale["n2"]["role"] == "Replica"


def test_table_lines_line_up_and_show_title_tags_pause_and_schedule() -> None:
    text = render(snapshot(config={"pause": True},
                           failover={"leader": "n1", "member": "n2",
                                     "scheduled_at": "2030-01-01T10:00:00+00:00"}))
    lines = text.splitlines()
    assert lines[0].startswith("+ Cluster: demo (7000000000000000001) ")
    table = [ln for ln in lines if ln.startswith(("+", "|"))]
    assert len({len(ln) for ln in table}) == 1, text
    assert "| Member | Host" in lines[1] and "Lag in MB" in lines[1]
    assert any("nofailover: true, zone: b" in ln for ln in lines)
    assert " Maintenance mode: on" in lines
    assert any("2030-01-01T10:00:00+00:00" in ln for ln in lines)


def test_pending_restart_column_appears_only_when_needed() -> None:
    assert "Pending restart" not in render(snapshot())
    snap = snapshot()
    data = dict(snap.member_data)
    data["n3"] = {**data["n3"], "pending_restart": True}
    text = render(Snapshot(snap.view, snap.scope, data, {}))
    row = next(ln for ln in text.splitlines() if ln.startswith("| n3 "))
    assert "Pending restart" in text and "| *" in row


def test_empty_cluster_renders() -> None:
    text = render(Snapshot(build_view({}, 1), "empty"))
    assert "Cluster: empty" in text and "no members" in text


def test_render_table_fits_the_widest_cell_and_long_titles() -> None:
    text = render_table(["a", "b"], [["x" * 12, None]], title="a very long title indeed!")
    lines = text.splitlines()
    assert lines[1] == "| a            | b |"
    assert lines[3] == "| xxxxxxxxxxxx |   |"
    assert "a very long title indeed!" in lines[0]


def test_history_rows_pad_old_three_field_entries() -> None:
    rows = history_rows([[1, 25165984, "no recovery target specified"],
                         [2, 50331808, "no recovery target specified",
                          "2026-11-21T08:00:00+00:00", "n2"]])
    assert rows[0] == [1, 25165984, "no recovery target specified", "", ""]
    assert rows[1][4] == "n2"


def test_dsn_of_a_member() -> None:
    assert dsn_of(Member("n1", conn_url="postgres://10.0.0.5:5433/postgres")) == \
        "host=10.0.0.5 port=5433"
    assert dsn_of(Member("n1", conn_url="postgres://db1/app")) == "host=db1 port=5432 dbname=app"


def test_query_output_formats() -> None:
    cols, rows = ["id", "name"], [(1, "a"), (2, None)]
    assert render_rows(cols, rows, "tsv") == "id\tname\n1\ta\n2\t"
    assert json.loads(render_rows(cols, rows, "json")) == [{"id": 1, "name": "a"},
                                                            {"id": 2, "name": None}]
    assert "| 2  |      |" in render_rows(cols, rows, "pretty")


def test_scheduled_restart_column_as_patronictl_and_tags_column_only_with_tags() -> None:
    snap = snapshot()
    data = dict(snap.member_data)
    data["n3"] = {**data["n3"], "scheduled_restart": {
        "schedule": "2099-01-01T00:00:00+00:00", "postgres_version": "99.0",
        "postmaster_start_time": "2026-12-03 11:10:01.314993+00:00"}}
    text = render(Snapshot(snap.view, snap.scope, data, {}))
    row = next(ln for ln in text.splitlines() if ln.startswith("| n3 "))
    assert "Scheduled restart" in text
    assert "2099-01-01T00:00:00+00:00 if version < 99.0" in row
    assert "Scheduled restart" not in render(snapshot())
    bare = build_view({"leader": ("n1", 1), "members/n1": (member("n1", 5431, role="primary"), 2)}, 3)
    assert "Tags" not in render(Snapshot(bare, "demo"))


def test_pending_restart_reason_column_lists_each_parameter_on_its_own_line() -> None:
    snap = snapshot()
    data = dict(snap.member_data)
    data["n3"] = {**data["n3"], "pending_restart": True, "pending_restart_reason": {
        "shared_buffers": {"old_value": "16MB", "new_value": "24MB"},
        "max_connections": {"old_value": "50", "new_value": "60"},
        "shared_preload_libraries": {"old_value": "", "new_value": "x" * 40}}}
    text = render(Snapshot(snap.view, snap.scope, data, {}))
    lines = text.splitlines()
    assert "Pending restart reason" in lines[1]
    assert len({len(ln) for ln in lines if ln.startswith(("+", "|"))}) == 1, text
    first = next(i for i, ln in enumerate(lines) if ln.startswith("| n3 "))
    assert "shared_buffers: 16MB->24MB" in lines[first]
    assert "max_connections: 50->60" in lines[first + 1]
    assert "shared_preload_libraries: [hidden - too long]" in lines[first + 2]
