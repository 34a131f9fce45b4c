"""The nostream tag side by side with Patroni 4.1.5: the member replicates from the WAL
archive only (no primary_conninfo, no WAL receiver) and has no replication slot anywhere.

Same YAML on both agents: archive_mode on, archive_command copying to a shared directory,
postgresql.recovery_conf.restore_command copying back from it; n2 tagged nostream."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

from harness import LocalCluster, wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]
FAST: dict[str, Any] = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5}


@pytest.mark.parametrize("kind", ["howdah", pytest.param("patroni", marks=pytest.mark.patroni)])
def test_a_nostream_member_replays_the_archive_only(
        kind: str, patroni_venv: Path, local_cluster: Callable[..., LocalCluster]) -> None:
    archive = Path(tempfile.mkdtemp(prefix="howdah-nostream-"))
    subprocess.run(["chown", "postgres:postgres", str(archive)], check=True)
    os.chmod(archive, 0o700)
    extra = {"postgresql": {
        "parameters": {"archive_mode": "on", "archive_timeout": "5s",
                       "archive_command": f"test ! -f {archive}/%f && cp %p {archive}/%f"},
        "recovery_conf": {"restore_command": f"cp {archive}/%f %p"}}}
    try:
        cluster = local_cluster(2, kind=kind, extra=extra, start_agents=False,
                                tags={"n2": {"nostream": True}}, **FAST)
        n1, n2 = cluster.nodes
        cluster.start_agents([n1])
        assert cluster.wait_leader(180) is n1
        cluster.start_agents([n2])
        wait_until(lambda: n2.sql("SELECT pg_is_in_recovery()") == [(True,)], 300,
                   what="n2 runs as a replica", details=lambda: cluster.dump_logs(40))
        n1.sql("CREATE TABLE shipped (v text)")
        n1.sql("INSERT INTO shipped VALUES ('through the archive')")
        n1.sql("SELECT pg_switch_wal()")
        wait_until(lambda: n2.sql("SELECT count(*) FROM pg_class WHERE relname = 'shipped'")
                   == [(1,)] and n2.sql("SELECT v FROM shipped") == [("through the archive",)],
                   180, interval=1, what="n2 replays the row from the archive",
                   details=lambda: cluster.dump_logs(40))
        assert n2.sql("SELECT count(*) FROM pg_stat_wal_receiver") == [(0,)]
        assert n2.sql("SHOW primary_conninfo") == [("",)]
        assert n1.sql("SELECT count(*) FROM pg_stat_replication") == [(0,)]
        wait_until(lambda: (n1.sql("SELECT slot_name FROM pg_replication_slots") == []), 60,
                   what="no slot for the nostream member on the leader",
                   details=lambda: str(n1.sql("SELECT slot_name FROM pg_replication_slots")))
        assert n2.role() == "replica"
        code, body = n2.api("/patroni")
        assert body.get("replication_state") == "in archive recovery", body
    finally:
        subprocess.run(["rm", "-rf", str(archive)], check=False)
