"""Restore drills (``howdahctl backup verify``) against a real S3 server over TLS
(tests/harness/s3.py), real pgBackRest and PostgreSQL, run on the replica of a 2-node cluster:

* a drill that passes: the newest backup (taken by the backup keeper) is restored into a scratch
  directory, replayed to a restore point written on the leader after more rows arrived, started
  on a scratch port and checked (row counts equal the leader's at the restore point, amcheck);
  the result is in the repository (annotations on the backup set), in the drill status file and
  in the replica's /metrics; the scratch directory is gone and the replica still streams;
* a drill that detects a corrupted backup: one relation file of that backup is altered in the
  bucket; the drill exits 1 with an ERROR line, records the failure in the same three places,
  and still leaves nothing behind."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip("moto")
pytest.importorskip("cryptography")

from harness import LocalCluster  # noqa: E402
from harness.node import AgentNode  # noqa: E402
from harness.s3 import BUCKET, Rendered, S3Server, python  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.local


def drill(conf: Rendered, node: AgentNode, *extra: str):  # type: ignore[no-untyped-def]
    """howdahctl backup verify on `node`, as the postgres user, with that node's YAML."""
    done = conf.run(*python().split(), "-m", "howdah.ctl.main", "-c", str(node.config_path), "backup", "verify",
                    f"--pgbackrest-config={conf.render(node)}", *extra, check=False,
                    env={"HOWDAH_DRILL_STATUS_FILE": str(status_file(node)), "HOWDAHCTL_DEBUG": ""})
    sys.stderr.write(f"$ howdahctl backup verify on {node.name} -> {done.returncode}\n{done.stdout}{done.stderr}")
    return done


def status_file(node: AgentNode) -> Path:
    return node.workdir / "drill-status.json"  # where the agent (HOME=workdir) looks by default


def metrics(node: AgentNode) -> dict[str, float]:
    code, body = node.api("/metrics")
    assert code == 200
    text = body if isinstance(body, str) else json.dumps(body)
    found = {}
    for line in text.splitlines():
        if line.startswith("howdah_backup_drill"):
            name, _, value = line.rpartition(" ")
            found[name.split("{")[0] if "_info" not in name else name] = float(value)
    return found


def annotations(conf: Rendered, label: str) -> dict[str, str]:
    out = conf.run(*conf.cmd(conf.shared).split(), "info", f"--set={label}", "--output=json").stdout
    backup = json.loads(out)[0]["backup"][0]
    return dict(backup.get("annotation") or {})


def leftovers(node: AgentNode) -> list[str]:
    return [p.name for p in node.workdir.iterdir() if p.name.startswith("howdah-drill-")]


def test_drill_passes_then_detects_a_corrupted_backup(s3: S3Server,
                                                      local_cluster: Callable[..., LocalCluster]) -> None:
    conf = Rendered(s3, "harness")
    try:
        c = local_cluster(2, ttl=8, loop_wait=1, retry_timeout=3, extra=conf.archiving())
        n1 = c.wait_leader(180)
        c.wait_streaming(1, 300)
        n2 = next(n for n in c.nodes if n is not n1)
        wait_for("the primary running", lambda: n1.api("/patroni")[1].get("state") == "running", 60)
        n1.sql("CREATE TABLE drill_rows (id int PRIMARY KEY, v text)")
        n1.sql("INSERT INTO drill_rows SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g")
        n1.sql("CREATE TABLE other_rows AS SELECT g AS id FROM generate_series(1, 300) g")
        assert "taking a full backup" in conf.keeper(n1).stdout
        label = conf.backups()[-1]["label"]
        n1.sql("INSERT INTO drill_rows SELECT g, 'after the backup' FROM generate_series(2001, 2500) g")

        # on the leader's node the drill refuses (it belongs on a replica or a spare node)
        refused = drill(conf, n1)
        assert refused.returncode == 1 and "is the leader" in refused.stderr, refused.stderr
        skipped = drill(conf, n1, "--scheduled")  # the crontab line runs on every node: one drills
        assert skipped.returncode == 0 and f"runs on {n2.name} (the first running replica)" in skipped.stdout
        assert not status_file(n1).exists()

        done = drill(conf, n2, "--tables=public.drill_rows,other_rows")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"backup {label} passed its restore drill" in done.stdout, done.stdout
        state = json.loads(status_file(n2).read_text())
        last = state["last"]
        assert last["result"] == "passed" and last["backup"] == label
        assert last["checks"]["row_counts"] == {"public.drill_rows": [2500, 2500], "other_rows": [300, 300]}
        assert last["checks"]["indexes_checked"] > 0 and last["checks"]["amcheck"] == "ran"
        assert last["restore_seconds"] > 0 and last["seconds"] >= last["restore_seconds"]
        notes = annotations(conf, label)
        assert notes["howdah-drill"] == "passed" and float(notes["howdah-drill-seconds"]) > 0, notes
        m = metrics(n2)
        assert m["howdah_backup_drill_last_passed"] == 1 and m["howdah_backup_drill_consecutive_failures"] == 0, m
        assert m["howdah_backup_drill_last_duration_seconds"] > 0
        assert leftovers(n2) == [], "the scratch directory is removed"
        n1.sql("INSERT INTO drill_rows VALUES (9999, 'streamed after the drill')")
        wait_for("n2 still replicates", lambda: n2.sql("SELECT count(*) FROM drill_rows") == [(2501,)], 60)

        # corrupt the relation file of drill_rows in that backup, in the bucket
        relpath = str(n1.sql("SELECT pg_relation_filepath('drill_rows')")[0][0])
        prefix = f"harness/backup/harness/{label}/pg_data/{relpath}"
        keys = [k for k in s3.keys(BUCKET, prefix) if k.split("/")[-1].split(".")[0] == relpath.split("/")[-1]]
        assert keys, s3.keys(BUCKET, f"harness/backup/harness/{label}/pg_data/base/")
        client = s3.client()
        body = bytearray(client.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read())
        middle = len(body) // 2
        body[middle:middle + 64] = bytes(b ^ 0x5A for b in body[middle:middle + 64])
        client.put_object(Bucket=BUCKET, Key=keys[0], Body=bytes(body))

        failed = drill(conf, n2)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        error = failed.stderr.strip().splitlines()[-1]
        assert error.startswith(f"howdahctl: ERROR: backup {label} failed its restore drill"), failed.stderr
        assert "Traceback" not in failed.stderr
        state = json.loads(status_file(n2).read_text())
        assert state["last"]["result"] == "failed" and state["consecutive_failures"] == 1
        assert state["last_passed"]["backup"] == label and state["drills_failed"] == 1
        assert annotations(conf, label)["howdah-drill"] == "failed"
        m = metrics(n2)
        assert m["howdah_backup_drill_last_passed"] == 0 and m["howdah_backup_drill_consecutive_failures"] == 1, m
        assert leftovers(n2) == [], "the scratch directory is removed after a failure too"
        assert n2.role() == "replica" and os.path.exists(n2.data_dir / "PG_VERSION")
        n1.sql("INSERT INTO drill_rows VALUES (10000, 'streamed after the failed drill')")
        wait_for("n2 still replicates", lambda: n2.sql("SELECT count(*) FROM drill_rows") == [(2502,)], 60)
    finally:
        conf.close()
