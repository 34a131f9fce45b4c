"""edit-config's pure parts: --set/--pg parsing, merging, the diff and validation."""
from __future__ import annotations

from typing import Any

import pytest

from howdah.core.merge import merge_patch as merge
from howdah.ctl.edit_config import apply_changes, diff, edit_in_editor, key_path, \
    pg_value, validate, yaml_value
from howdah.ctl.errors import CtlError

BASE: dict[str, Any] = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10,
                        "postgresql": {"parameters": {"max_connections": 100}}}


@pytest.mark.parametrize("text, value", [
    ("40", 40), ("true", True), ("1.5", 1.5), ("abc", "abc"), ("", None), ("null", None),
    ("[a, b]", ["a", "b"]), ("{x: 1}", {"x": 1}), ("[unclosed", "[unclosed"),
])
def test_set_values_are_read_as_yaml(text: str, value: Any) -> None:
    assert yaml_value(text) == value


@pytest.mark.parametrize("text, value", [
    ("8MB", "8MB"), ("on", "on"), ("off", "off"), ("true", "true"), ("200", 200),
    ("0.5", 0.5), ("", None), ("null", None), ("'$libdir'", "'$libdir'"),
])
def test_pg_values_keep_postgres_spellings(text: str, value: Any) -> None:
    assert pg_value(text) == value


def test_key_paths_keep_dotted_parameter_names_whole() -> None:
    assert key_path("a.b.c") == ["a", "b", "c"]
    assert key_path("postgresql.parameters.pg_stat_statements.track") == \
        ["postgresql", "parameters", "pg_stat_statements.track"]
    with pytest.raises(CtlError):
        key_path("a..b")


def test_apply_changes_sets_nested_creates_and_deletes() -> None:
    new = apply_changes(BASE, ["ttl=40", "synchronous_mode=true", "postgresql.use_slots=false",
                               "standby_cluster.host=10.0.0.9", "loop_wait="],
                        ["work_mem=8MB", "max_connections=200", "auto_explain.log_min=5"])
    assert new["ttl"] == 40 and new["synchronous_mode"] is True
    assert "loop_wait" not in new
    assert new["postgresql"]["use_slots"] is False
    assert new["standby_cluster"] == {"host": "10.0.0.9"}
    assert new["postgresql"]["parameters"] == {"max_connections": 200, "work_mem": "8MB",
                                               "auto_explain.log_min": 5}
    assert BASE["ttl"] == 30 and "work_mem" not in BASE["postgresql"]["parameters"]


def test_deleting_a_missing_nested_key_creates_nothing() -> None:
    assert apply_changes({}, ["a.b="], ["x=null"]) == {}


@pytest.mark.parametrize("item, option", [("ttl", "--set"), ("=5", "--set"), ("work_mem", "--pg")])
def test_assignments_need_key_and_equals(item: str, option: str) -> None:
    sets, pgs = ([item], []) if option == "--set" else ([], [item])
    with pytest.raises(CtlError, match=option):
        apply_changes(BASE, sets, pgs)


def test_merge_is_patch_semantics() -> None:
    out = merge(BASE, {"ttl": None, "postgresql": {"parameters": {"work_mem": "4MB"}},
                       "slots": {"s": {"type": "physical"}}})
    assert "ttl" not in out
    assert out["postgresql"]["parameters"] == {"max_connections": 100, "work_mem": "4MB"}
    assert out["slots"] == {"s": {"type": "physical"}}


def test_diff_shows_only_changed_lines_and_nothing_when_equal() -> None:
    assert diff(BASE, dict(BASE)) == ""
    text = diff(BASE, {**BASE, "ttl": 40})
    assert "-ttl: 30" in text and "+ttl: 40" in text
    assert "+loop_wait" not in text and "-loop_wait" not in text


def test_validate_refuses_a_wrongly_typed_timing_value() -> None:
    validate(BASE)
    validate({**BASE, "ttl": 20})  # breaks the timing rule: adjusted by the agents
    with pytest.raises(CtlError, match="ttl"):
        validate({**BASE, "ttl": "twenty"})


def test_editor_edits_the_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITOR", "sed -i -e s/^ttl:.*/ttl:\\ 45/")
    assert edit_in_editor(BASE) == {**BASE, "ttl": 45}


@pytest.mark.parametrize("editor, message", [
    ("false", "exited with status 1"),
    ("/nonexistent/editor", "cannot run editor"),
    ("sed -i -e s/^ttl:.*/ttl:\\ [/", "not valid YAML"),
    ("sed -i -e s/.*/-\\ x/", "mapping"),
])
def test_editor_failures_are_one_line(monkeypatch: pytest.MonkeyPatch, editor: str,
                                      message: str) -> None:
    monkeypatch.setenv("EDITOR", editor)
    with pytest.raises(CtlError, match=message):
        edit_in_editor(BASE)
