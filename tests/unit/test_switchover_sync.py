"""POST /switchover in synchronous mode: the candidate must be a synchronous
standby, with Patroni 4.1.5's 412 text (compared side by side in
tests/local/test_conformance_misc.py)."""
from __future__ import annotations

from typing import Any

import pytest

from howdah.api.base import TextReply
from howdah.api.switchover import candidates, check_request
from howdah.core.models import ClusterView, Leader, Member


def view(mode: Any = True, **extra: Any) -> ClusterView:
    members = tuple(Member(n, api_url=f"http://{n}:8008/patroni") for n in ("n1", "n2", "n3"))
    return ClusterView(initialize="1", leader=Leader("n1", 1), members=members,
                       config={"synchronous_mode": mode, **extra}, sync_leader="n1",
                       sync_standbys=("n2",))


def test_switchover_to_a_non_synchronous_member_is_412() -> None:
    with pytest.raises(TextReply) as err:
        check_request("switchover", {"leader": "n1", "candidate": "n3"}, view())
    assert (err.value.code, err.value.message) == (412, "candidate name does not match with sync_standby")


@pytest.mark.parametrize("mode,extra", [(False, {}), ("quorum", {}),
                                        (True, {"standby_cluster": {"host": "x"}})])
def test_other_modes_accept_any_member(mode: Any, extra: dict[str, Any]) -> None:
    assert check_request("switchover", {"leader": "n1", "candidate": "n3"}, view(mode, **extra))[1] \
        == {"leader": "n1", "member": "n3"}


def test_failover_and_sync_candidates() -> None:
    # /failover is not limited (Patroni checks only the candidate's health there)
    assert check_request("failover", {"candidate": "n3"}, view())[1] == {"member": "n3"}
    assert check_request("switchover", {"leader": "n1", "candidate": "n2"}, view())[1]["member"] == "n2"
    assert [m.name for m in candidates(view(), None)] == ["n2"]
    assert [m.name for m in candidates(view(False), None)] == ["n2", "n3"]
