"""JSON merge patch (RFC 7386) of dynamic configs: PATCH /config, howdahctl edit-config."""
from __future__ import annotations

import copy
from typing import Any, Mapping


def merge_patch(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``patch`` merged into ``base`` (null deletes, objects merge)."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            current = out.get(key)
            out[key] = merge_patch(current if isinstance(current, Mapping) else {}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out
