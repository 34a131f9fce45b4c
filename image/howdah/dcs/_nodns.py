"""Keep dnspython out of the agent.

python-etcd imports dns.resolver at import time, only for SRV discovery,
which Howdah does not offer (etcd hosts are listed).  dnspython and what it
pulls in cost several MB of resident memory in every agent; when it is not
already loaded, a placeholder module that refuses SRV lookups stands in.
"""
from __future__ import annotations

import sys
import types
from typing import Any


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("etcd SRV discovery is not supported: list the etcd hosts instead")


if "dns.resolver" not in sys.modules:
    _dns = sys.modules.get("dns") or types.ModuleType("dns")
    _resolver = types.ModuleType("dns.resolver")
    _resolver.query = _refuse  # type: ignore[attr-defined]
    _resolver.resolve = _refuse  # type: ignore[attr-defined]
    _dns.resolver = _resolver  # type: ignore[attr-defined]
    sys.modules.setdefault("dns", _dns)
    sys.modules["dns.resolver"] = _resolver
