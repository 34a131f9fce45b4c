"""SPILO_CONFIGURATION / HOWDAH_CONFIGURATION merge rules."""
from __future__ import annotations

import pytest

from howdah.entrypoint.merge import MergeError, deep_merge

BASE = {"a": 1, "m": {"x": 1, "y": [1, 2]}, "pg_hba": ["local all all trust", "host all all all md5"]}


@pytest.mark.parametrize(
    "overlay, expected",
    [
        ({}, BASE),
        ({"a": 2}, {**BASE, "a": 2}),
        ({"m": {"z": 3}}, {**BASE, "m": {"x": 1, "y": [1, 2], "z": 3}}),
        ({"m": {"y": [9]}}, {**BASE, "m": {"x": 1, "y": [9]}}),  # lists replace
        ({"m": {"x": None}}, {**BASE, "m": {"y": [1, 2]}}),  # null deletes
        ({"m": None}, {"a": 1, "pg_hba": BASE["pg_hba"]}),
        ({"a": {"b": 1}}, {**BASE, "a": {"b": 1}}),  # mapping over scalar replaces
        ({"pg_hba+": ["host all all 10.0.0.0/8 md5"]},
         {**BASE, "pg_hba": ["local all all trust", "host all all all md5", "host all all 10.0.0.0/8 md5"]}),
        ({"+pg_hba": ["host all bad all reject"]},
         {**BASE, "pg_hba": ["host all bad all reject", "local all all trust", "host all all all md5"]}),
        ({"new+": [1]}, {**BASE, "new": [1]}),  # append creates
        ({"m": {"+y": [0], "y+": [3]}}, {**BASE, "m": {"x": 1, "y": [0, 1, 2, 3]}}),
        ({"+": 5}, {**BASE, "+": 5}),  # a bare '+' is an ordinary key
    ],
)
def test_merge(overlay: dict, expected: dict) -> None:
    assert deep_merge(BASE, overlay) == expected


def test_merge_does_not_change_inputs() -> None:
    base = {"m": {"l": [1]}}
    overlay = {"m": {"l+": [2]}}
    deep_merge(base, overlay)
    assert base == {"m": {"l": [1]}} and overlay == {"m": {"l+": [2]}}


@pytest.mark.parametrize("overlay", [{"a+": [1]}, {"pg_hba+": "host all all all md5"}])
def test_merge_append_errors(overlay: dict) -> None:
    with pytest.raises(MergeError):
        deep_merge(BASE, overlay)
