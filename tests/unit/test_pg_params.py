"""Parameters as the installed server accepts them (pg/params.py), against the
host's real postgres binary where one is installed."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from howdah.core.settings import SettingsError, build_settings, valid_name
from howdah.pg import conf, params

PG15 = Path("/usr/lib/postgresql/15/bin")
LINE = re.compile(r"(#.*|include_if_exists '[^'\n]*'|[A-Za-z_][A-Za-z0-9_.]* = [^\n]*)\Z")
KNOWN = {"wal_keep_size", "shared_buffers", "wal_level", "debug_parallel_query", "ssl_groups",
         "work_mem"}


def run(parameters: dict[str, Any], major: int | None) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    out = params.for_server(parameters, major, lambda n: n in KNOWN, warnings.append)
    return out, warnings


@pytest.mark.parametrize("major", [13, 14, 15, 16, 17, 18])
def test_wal_keep_segments_is_wal_keep_size_in_mb_from_13_on(major: int) -> None:
    out, warnings = run({"wal_keep_segments": 100, "work_mem": "4MB"}, major)
    assert out == {"wal_keep_size": "1600MB", "work_mem": "4MB"}
    assert len(warnings) == 1 and "wal_keep_segments" in warnings[0] and "1600MB" in warnings[0]


def test_an_explicit_new_name_wins_over_the_old_one() -> None:
    out, warnings = run({"wal_keep_segments": 100, "wal_keep_size": "64MB"}, 15)
    assert out == {"wal_keep_size": "64MB"}
    assert "left out" in warnings[0]


@pytest.mark.parametrize("major, expected", [
    (15, {}), (16, {"debug_parallel_query": "on"}), (17, {"debug_parallel_query": "on"})])
def test_force_parallel_mode_is_debug_parallel_query_from_16(major: int,
                                                            expected: dict[str, Any]) -> None:
    # before 16 the test's stand-in server does not know the name: left out
    assert run({"force_parallel_mode": "on"}, major)[0] == expected


def test_ssl_ecdh_curve_is_ssl_groups_from_18() -> None:
    assert run({"ssl_ecdh_curve": "prime256v1"}, 18)[0] == {"ssl_groups": "prime256v1"}


def test_unknown_names_are_left_out_with_a_warning_and_extension_names_kept() -> None:
    out, warnings = run({"checkpoint_segments": 8, "operator_precedence_warning": "on",
                         "pg_stat_statements.max": 1000, "shared_buffers": "16MB"}, 15)
    assert out == {"pg_stat_statements.max": 1000, "shared_buffers": "16MB"}
    assert len(warnings) == 2 and all("left out" in w for w in warnings)


def test_wal_level_hot_standby_is_replica() -> None:
    assert run({"wal_level": "hot_standby"}, 15)[0] == {"wal_level": "replica"}


def test_a_bad_wal_keep_segments_value_is_left_out() -> None:
    out, warnings = run({"wal_keep_segments": "lots"}, 15)
    assert out == {} and "cannot be turned into wal_keep_size" in warnings[0]


@pytest.mark.parametrize("name", ["a = 1\nb", "x=y", "1abc", "", "a b", "a'b", "a\n", "é"])
def test_names_that_are_no_guc_identifier(name: str) -> None:
    assert not valid_name(name)
    out, warnings = run({name: 1, "work_mem": "1MB"}, 15)
    assert out == {"work_mem": "1MB"} and "not a parameter name" in warnings[0]
    text = conf.render_conf("127.0.0.1:5432", {name: 1, "work_mem": "1MB"}, {name: "x"})
    assert all(LINE.match(line) for line in text.splitlines()), text
    assert "work_mem = '1MB'" in text.splitlines()


@pytest.mark.parametrize("name", ["work_mem", "pg_stat_statements.max", "_x", "A1.b_2"])
def test_plain_identifiers_are_names(name: str) -> None:
    assert valid_name(name)


def test_a_line_break_in_a_value_stays_inside_its_line() -> None:
    text = conf.render_conf("127.0.0.1:5432", {"work_mem": "1MB'\nfsync = off"}, None)
    assert "fsync = off" not in text.splitlines()
    assert "work_mem = '1MB''\\nfsync = off'" in text.splitlines()


@pytest.mark.parametrize("where", ["dcs", "local"])
def test_build_settings_refuses_a_bad_name(where: str) -> None:
    pg = {"parameters": {"max_connections = 5\nfsync": "off"}}
    dyn, local = ({"postgresql": pg}, {}) if where == "dcs" else ({}, pg)
    with pytest.raises(SettingsError, match=r"postgresql.parameters: .* is not a parameter name"):
        build_settings(dyn, local)


def test_build_settings_refuses_parameters_that_are_no_map() -> None:
    with pytest.raises(SettingsError, match="postgresql.parameters: must be a mapping"):
        build_settings({"postgresql": {"parameters": ["work_mem"]}}, {})


needs_pg = pytest.mark.skipif(not (PG15 / "postgres").exists(), reason="no PostgreSQL 15 here")


@needs_pg
def test_the_real_server_is_asked() -> None:
    gucs = params.ServerGucs(PG15)
    assert params.server_major(PG15) == 15
    assert gucs.accepts("wal_keep_size") and gucs.accepts("shared_buffers")
    assert not gucs.accepts("wal_keep_segments") and not gucs.accepts("checkpoint_segments")
    assert gucs.accepts("force_parallel_mode")  # a developer option --describe-config hides


@needs_pg
def test_server_parameters_on_pg15() -> None:
    out = params.ServerParameters(PG15)({"wal_keep_segments": 100, "stats_temp_directory": "/x",
                                         "work_mem": "4MB", "some_ext.setting": "1"})
    assert out == {"wal_keep_size": "1600MB", "work_mem": "4MB", "some_ext.setting": "1"}
