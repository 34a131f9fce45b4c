"""Serve a fixed snapshot, to try the REST API or load-test it.

    python -m howdah.api.demo --port 8008 --role primary
    wrk -t2 -c16 -d10s http://127.0.0.1:8008/primary
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from typing import Optional, Sequence

from howdah.api.server import RestApiServer
from howdah.core.status import NodeStatus

_REPLICATION = (
    {"usename": "replicator", "application_name": "node2", "client_addr": "10.0.0.2",
     "state": "streaming", "sync_state": "async", "sync_priority": 0},
    {"usename": "replicator", "application_name": "node3", "client_addr": "10.0.0.3",
     "state": "streaming", "sync_state": "async", "sync_priority": 0},
)


def demo_status(role: str, now: float) -> NodeStatus:
    """A healthy node of a three-node cluster, its lease valid for a day."""
    leader = role == "primary"
    return NodeStatus(
        name="node1", scope="demo", state="running", role=role, pg_running=True,
        server_version=150010, timeline=3,
        xlog_location=67395656 if leader else None,
        received_location=None if leader else 67395656,
        replayed_location=None if leader else 67395000,
        replication_state=None if leader else "streaming",
        replication=_REPLICATION if leader else (),
        postmaster_start_time="2026-11-21 06:00:00.000000+00:00",
        system_identifier="7268616322854375442", dcs_last_seen=int(time.time()),
        tags={"clonefrom": True}, lease_deadline=now + 86400.0 if leader else None,
        leader_optime=67395656, last_loop=now + 86400.0, dcs_ok=True,
    )


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8008)
    p.add_argument("--role", default="primary", choices=["primary", "replica"])
    p.add_argument("--uvloop", action="store_true", help="run the IOLoop on uvloop")
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    status = demo_status(args.role, time.monotonic())
    api = RestApiServer(lambda: status, use_uvloop=args.uvloop, certfile=args.certfile, keyfile=args.keyfile)
    api.start(args.host, args.port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    api.stop()


if __name__ == "__main__":
    main()
