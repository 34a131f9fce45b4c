"""WAL archiving helpers shared by the pgBackRest and S3 tests."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

from .node import AgentNode
from .waiting import wait_for


def switch_and_archive(node: AgentNode, timeout: float = 120) -> str:
    """Close the current WAL segment on `node` and wait until its archiver shipped it;
    returns the segment's name."""
    segment = str(node.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    wait_for(f"{segment} archived", lambda: (node.sql(
        "SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") >= segment, timeout)
    return segment


def history_with_a_target(src: AgentNode, full_backup: Callable[[], str]) -> str:
    """On the primary `src`: table events gets row 1, a full backup is taken (`full_backup()`
    returns the backup keeper's output), row 2 is archived, then comes the returned recovery
    target time, then row 3 is archived: a clone recovered to the target has rows 1 and 2."""
    src.sql("CREATE TABLE events (id int, at timestamptz DEFAULT now())")
    src.sql("INSERT INTO events (id) VALUES (1)")
    wait_for("the source running as primary", lambda: src.api("/patroni")[1].get("state") == "running", 60)
    assert "full backup of source done" in full_backup()
    src.sql("INSERT INTO events (id) VALUES (2)")
    switch_and_archive(src)
    time.sleep(1.5)
    target = datetime.now(timezone.utc).isoformat(sep=" ")
    time.sleep(1.5)
    src.sql("INSERT INTO events (id) VALUES (3)")  # after the target time: absent from the clone
    switch_and_archive(src)
    return target
