"""WAL archiving helpers shared by the pgBackRest and S3 tests."""
from __future__ import annotations

from .node import AgentNode
from .waiting import wait_for


def switch_and_archive(node: AgentNode, timeout: float = 120) -> str:
    """Close the current WAL segment on `node` and wait until its archiver shipped it;
    returns the segment's name."""
    segment = str(node.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    wait_for(f"{segment} archived", lambda: (node.sql(
        "SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") >= segment, timeout)
    return segment
