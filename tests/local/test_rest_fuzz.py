"""Fuzz the REST API of a live node from docs/openapi.yaml with schemathesis.

A one-node Howdah cluster (with Basic authentication) takes every operation
the description lists, with generated parameters and bodies, authenticated.
No answer may be a 500, nor a 5xx the description does not list for that
operation (health checks answer 503 by design; an action that cannot be done
answers 503 with a reason), nor carry a Python traceback.  The cluster is
throwaway: the fuzzer restarts it, rewrites its config and so on.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from harness import AgentNode, LocalCluster  # noqa: E402

pytestmark = pytest.mark.local
SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
TOKEN = "Basic " + base64.b64encode(b"fuzz:fuzz-pw").decode()
SCHEMA = schemathesis.openapi.from_path(str(SPEC))


@pytest.fixture(scope="module")
def fuzz_node() -> Iterator[AgentNode]:
    with LocalCluster(1, ttl=20, loop_wait=2, retry_timeout=5, scope="fuzz",
                      extra={"restapi": {"authentication": {"username": "fuzz",
                                                            "password": "fuzz-pw"}}}) as c:
        yield c.wait_leader(180)


def documented(case: Any, code: int) -> bool:
    responses = case.operation.definition.raw.get("responses", {})
    return str(code) in responses


@SCHEMA.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case: Any, fuzz_node: AgentNode) -> None:
    response = case.call(base_url=fuzz_node.api_url, headers={"Authorization": TOKEN}, timeout=120)
    code = response.status_code
    text = response.text
    assert "Traceback" not in text, f"{case.method} {case.formatted_path}: {text[:500]}"
    assert code != 500, f"{case.method} {case.formatted_path} {case.body!r}: 500 {text[:500]}"
    if code >= 500:
        assert documented(case, code), \
            f"{case.method} {case.formatted_path} {case.body!r}: undocumented {code} {text[:300]}"
