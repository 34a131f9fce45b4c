"""The nostream tag in decide(): such a member replays the WAL archive only."""
from __future__ import annotations

from howdah.core.decide import decide
from howdah.core.models import ClusterView, DataState, Leader, LocalState, Member, PgStatus
from howdah.core.settings import Settings
from howdah.core.transitions import Goal, Reason

S = Settings(ttl=30, loop_wait=10, retry_timeout=10)
VIEW = ClusterView(initialize="42", leader=Leader("a", 5), optime=100, members=(
    Member(name="a", role="primary", state="running", conn_url="postgres://a:5432/postgres"),))
TAGS = {"nostream": True}


def pg(running: bool = True, upstream: str | None = None) -> PgStatus:
    return PgStatus(data=DataState.REPLICA, running=running, in_recovery=True, sysid="42",
                    timeline=1, wal_position=100, replayed=100, upstream_host=upstream)


def test_a_stopped_nostream_member_starts_without_an_upstream() -> None:
    d = decide(VIEW, LocalState(name="b", pg=pg(False), tags=TAGS), (), S, 0.0)
    assert (d.goal, d.reason, d.target) == (Goal.START_REPLICA, Reason.NOSTREAM, None)


def test_a_streaming_nostream_member_drops_its_upstream() -> None:
    d = decide(VIEW, LocalState(name="b", pg=pg(upstream="a:5432"), tags=TAGS), (), S, 0.0)
    assert (d.goal, d.reason, d.target) == (Goal.FOLLOW, Reason.NOSTREAM, None)


def test_an_archive_replica_with_nostream_changes_nothing() -> None:
    d = decide(VIEW, LocalState(name="b", pg=pg(), tags=TAGS), (), S, 0.0)
    assert (d.goal, d.reason) == (Goal.REPLICATE, Reason.NOSTREAM)


def test_without_the_tag_it_follows_the_leader() -> None:
    d = decide(VIEW, LocalState(name="b", pg=pg(), tags={}), (), S, 0.0)
    assert (d.goal, d.target) == (Goal.FOLLOW, "a")
