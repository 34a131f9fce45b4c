"""pending_restart_reason values as Patroni 4.1.5 renders them (values checked against
Patroni's own rendering in bench/.venv-patroni: the greatest unit that states them exactly)."""
from __future__ import annotations

import pytest

from howdah.pg.pending import reason


@pytest.mark.parametrize(("in_file", "unit", "vartype", "want"), [
    ("24MB", "8kB", "integer", "24MB"),
    ("3072", "8kB", "integer", "24MB"),      # a bare number is in the parameter's unit
    ("24576kB", "8kB", "integer", "24MB"),
    ("1536", "8kB", "integer", "12MB"),
    ("3", "8kB", "integer", "24kB"),
    ("-1", "8kB", "integer", "-8kB"),
    ("0", "kB", "integer", "0"),
    ("1536", "kB", "integer", "1536kB"),
    ("2048000", "kB", "integer", "2000MB"),
    ("1024", "ms", "integer", "1024ms"),
    ("2048000", "ms", "integer", "2048s"),
    ("60", "s", "integer", "1min"),
    ("120", "integer", "integer", "120"),    # not a unit: as written
    ("60", None, "integer", "60"),
    ("true", None, "bool", "on"),
    ("Replica", None, "enum", "replica"),
    ("'abc'", None, "string", "'abc'"),
])
def test_new_value_in_the_greatest_exact_unit(in_file: str, unit: str | None, vartype: str,
                                             want: str) -> None:
    got = reason([["p", "x", unit, vartype, in_file, "0"]])
    assert got == {"p": {"old_value": "x", "new_value": want}}


def test_no_file_line_means_the_built_in_default_and_nothing_pending_means_empty() -> None:
    assert reason([["shared_buffers", "24MB", "8kB", "integer", None, "16384"]]) == \
        {"shared_buffers": {"old_value": "24MB", "new_value": "128MB"}}
    assert reason(None) == {}
