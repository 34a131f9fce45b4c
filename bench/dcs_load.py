"""DCS requests per second of one idle 3-node cluster, per backend (the figure that decides how
many clusters one etcd, or one Kubernetes API server, can carry).

    /work/main/.venv/bin/python bench/dcs_load.py [--seconds 60] [--backends etcd3,etcd,patroni-etcd3,kubernetes]

Each cluster runs the default timing (ttl 30, loop_wait 10, retry_timeout 10), is left idle
once its replicas stream, and is measured for --seconds: etcd's own counters
(`grpc_server_started_total` for the v3 API, gateway calls included; `etcd_http_received_total`
for v2) or, for Kubernetes, the requests the stand-in API server (tests/harness/kubeapi.py)
served. Results: bench/results/dcs-load-<time>.json and a markdown table.
"""
from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from harness import EtcdServer, LocalCluster  # noqa: E402
from harness.kubeapi import KubeApiStandIn  # noqa: E402
from harness.waiting import wait_for  # noqa: E402

TIMING = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}
SPILO = {"labels": {"application": "spilo"}, "scope_label": "cluster-name", "role_label": "spilo-role",
         "namespace": "db"}


def etcd_requests(etcd: EtcdServer) -> int:
    text = urllib.request.urlopen(etcd.url + "/metrics", timeout=10).read().decode()
    name = "etcd_http_received_total" if etcd.v2 else "grpc_server_started_total"
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)))


wait = functools.partial(wait_for, timeout=300, every=0.5)  # a bench cluster settles slowly


def settled(cluster: LocalCluster) -> None:
    wait("one primary", lambda: sum(n.api("/primary")[0] == 200 for n in cluster.nodes) == 1)
    wait("two replicas", lambda: sum(n.api("/replica")[0] == 200 for n in cluster.nodes) == 2)


def measure_etcd(kind: str, agent: str, seconds: float) -> float:
    with EtcdServer(v2=kind == "etcd") as etcd, LocalCluster(3, kind=agent, etcd=etcd, scope="load",
                                                             **TIMING) as cluster:
        settled(cluster)
        time.sleep(TIMING["loop_wait"] * 2)  # past the first cycles after bootstrap
        before, started = etcd_requests(etcd), time.monotonic()
        time.sleep(seconds)
        return (etcd_requests(etcd) - before) / (time.monotonic() - started)


def measure_kubernetes(seconds: float) -> float:
    import os
    with KubeApiStandIn() as api, LocalCluster(3, scope="load", start_agents=False, **TIMING,
                                               extra={"etcd": None, "etcd3": None,
                                                      "kubernetes": SPILO}) as cluster:
        for node in cluster.nodes:
            api.put_pod("db", node.name, {"application": "spilo", "cluster-name": "load"})
            kube = node.workdir / ".kube"
            kube.mkdir(parents=True, exist_ok=True)
            api.kubeconfig(kube / "config", "db")
            if os.geteuid() == 0:
                shutil.chown(kube, "postgres", "postgres")
                shutil.chown(kube / "config", "postgres", "postgres")
        cluster.start_agents()
        settled(cluster)
        time.sleep(TIMING["loop_wait"] * 2)
        before, started = api.requests, time.monotonic()
        time.sleep(seconds)
        return (api.requests - before) / (time.monotonic() - started)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--backends", default="etcd3,etcd,patroni-etcd3,kubernetes")
    args = p.parse_args()
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        try:
            if backend == "kubernetes":
                rate = measure_kubernetes(args.seconds)
            elif backend.startswith("patroni-"):
                rate = measure_etcd(backend.split("-", 1)[1], "patroni", args.seconds)
            else:
                rate = measure_etcd(backend, "howdah", args.seconds)
            results[backend] = round(rate, 2)
        except Exception as exc:  # noqa: BLE001
            results[backend] = f"error: {exc!r}"
        print(f"{backend}: {results[backend]}", flush=True)
    out = BENCH / "results" / f"dcs-load-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"timing": TIMING, "seconds": args.seconds, "requests_per_second": results},
                              indent=2))
    print("\n| backend (3 idle nodes, ttl 30 / loop_wait 10) | DCS requests/s |\n|---|---|")
    for backend, rate in results.items():
        print(f"| {backend} | {rate} |")
    return 0 if all(isinstance(r, float) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
