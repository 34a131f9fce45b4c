"""Deep merge of user YAML (SPILO_CONFIGURATION, HOWDAH_CONFIGURATION) over the rendered config.

Rules, applied recursively from the top:

* mapping over mapping: merged key by key;
* any other value (scalar, list, or a mapping over a non-mapping): replaces the old value;
* ``key: null`` deletes ``key``;
* ``key+: [...]`` appends the items to the list at ``key`` (creating it when absent);
* ``+key: [...]`` inserts the items in front of the list at ``key``.  For ``pg_hba`` this is
  usually what you want, since the first matching line wins.

So ``postgresql: {pg_hba: [...]}`` replaces the whole pg_hba list, while
``postgresql: {+pg_hba: ["host all all 10.0.0.0/8 scram-sha-256"]}`` keeps the rendered lines
and adds one before them.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping


class MergeError(ValueError):
    pass


def _split(key: Any) -> tuple[str, Any]:
    """('append'|'prepend'|'set', bare key)."""
    if isinstance(key, str) and len(key) > 1:
        if key.endswith("+"):
            return "append", key[:-1]
        if key.startswith("+"):
            return "prepend", key[1:]
    return "set", key


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """Return a new dict: ``overlay`` merged over ``base`` (neither argument is changed)."""
    result: dict[str, Any] = copy.deepcopy(dict(base))
    for raw_key, value in overlay.items():
        mode, key = _split(raw_key)
        where = f"{path}.{key}" if path else str(key)
        if mode != "set":
            if not isinstance(value, list):
                raise MergeError(f"{path + '.' if path else ''}{raw_key} must be a list")
            current = result.get(key)
            if current is None:
                current = []
            if not isinstance(current, list):
                raise MergeError(f"{where} is not a list, so {raw_key} cannot extend it")
            items = copy.deepcopy(value)
            result[key] = current + items if mode == "append" else items + current
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value, where)
        elif isinstance(value, Mapping):
            result[key] = deep_merge({}, value, where)
        else:
            result[key] = copy.deepcopy(value)
    return result
