"""A leader whose agent hangs (SIGSTOP) while its postgres runs on: the scenario the
fence exists for.  Shared by the fence and HA tests."""
from __future__ import annotations

import time

from .cluster import LocalCluster
from .node import AgentNode
from .waiting import wait_for


def hang_leader_agent_and_check_writes(c: LocalCluster, old: AgentNode) -> AgentNode:
    """Freeze `old`'s agent until another member leads and took a write, then thaw it.
    Asserts every write the old primary acknowledged came before the new leader's first
    one (never two writable primaries), waits for `old` to rejoin as a replica and
    returns the new leader."""
    with c.writer_probe(0.02) as probe:
        time.sleep(1)
        old.freeze()  # SIGSTOP of the agent only: postgres runs on
        try:
            new = c.wait_leader(120, exclude=[old.name])
            wait_for("a write on the new leader",
                     lambda: any(w.node == new.name for w in probe.snapshot()), 60)
            time.sleep(1)
        finally:
            old.thaw()
    writes = probe.snapshot()
    last_old = max(w.at for w in writes if w.node == old.name)
    first_new = min(w.at for w in writes if w.node == new.name)
    assert last_old < first_new, (
        f"two writable primaries: {old.name} took a write {last_old - first_new:.2f}s "
        f"after {new.name} did")
    wait_for(f"{old.name} back as a replica", lambda: old.role() == "replica", 240)
    return new
