"""`howdah /path/to/config.yml`: the HA agent's command line.

The composition root: the one module that wires the agent (howdah.agent) to its REST API
(howdah.api); it sits above both layers and nothing in the package imports it."""
from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from howdah import COMPAT_VERSION, __version__
from howdah.config.load import AgentConfig, ConfigError, load
from howdah.core.models import tag_conflicts


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="howdah", description="PostgreSQL HA agent (Patroni-compatible)")
    p.add_argument("config", nargs="?", help="agent YAML (Patroni format)")
    p.add_argument("--validate-config", action="store_true", help="check the config and exit")
    p.add_argument("--version", action="version",
                   version=f"howdah {__version__} (patroni contract {COMPAT_VERSION})")
    return p.parse_args(argv)


def setup_logging(cfg: AgentConfig) -> None:
    level = str((cfg.raw.get("log") or {}).get("level", os.environ.get("HOWDAH_LOG_LEVEL", "INFO")))
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("urllib3", "tornado.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def name_taken(agent: Any, retry_every: float = 5.0) -> bool:
    """Another agent with this node's name is alive: its member key's REST API
    answers (any status), as Patroni checks before it starts (a second agent
    with a live member's name would fight it for the same member key).  An
    unreachable DCS is waited for, as Patroni waits: nothing is started (no API,
    no postgres) before the name is known to be free."""
    from howdah.dcs.base import DcsError
    while True:
        try:
            member = agent.dcs.get_cluster().member(agent.cfg.name)
            break
        except DcsError as exc:
            logging.getLogger("howdah").info(
                "waiting on the DCS (%s): it must say whether a node named '%s' runs already",
                exc, agent.cfg.name)
            time.sleep(retry_every)
    if member is None or not member.api_url:
        return False
    parts = urlsplit(member.api_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/liveness", "", ""))
    try:
        agent.peer_pool.request("GET", url, timeout=3.0, preload_content=True)
    except Exception:  # noqa: BLE001 - no answer: the name is free
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    path = args.config or os.environ.get("PATRONI_CONFIGURATION_FILE")
    try:
        cfg = load(path)
    except ConfigError as exc:
        print(f"howdah: config error: {exc}", file=sys.stderr)
        return 2
    if args.validate_config:
        print(f"howdah: {path or 'environment'}: configuration is valid")
        return 0
    setup_logging(cfg)
    from howdah.agent import archive_health  # archiving, backups and the volume, for /metrics
    try:
        health_cfg = archive_health.ArchiveConfig.from_raw(cfg.raw.get("archive_health"))
    except archive_health.ArchiveConfigError as exc:
        print(f"howdah: config error: {exc}", file=sys.stderr)
        return 2
    from howdah.agent.ha import Agent
    from howdah.api.security import Guard
    from howdah.api.server import RestApiServer

    try:
        agent = Agent(cfg)
    except ConfigError as exc:
        print(f"howdah: config error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"howdah: cannot start: {exc}", file=sys.stderr)
        return 1
    for warning in tag_conflicts(cfg.tags):
        logging.getLogger("howdah").warning("%s", warning)
    agent.config_path = path
    if name_taken(agent):
        logging.getLogger("howdah").critical(
            "Can't start; there is already a node named '%s' running", cfg.name)
        return 1
    host, _, port = str(cfg.restapi["listen"]).rpartition(":")
    # Probes are answered on the API thread: let it have the GIL promptly.
    sys.setswitchinterval(0.001)
    def opt(key: str) -> str | None:
        value = cfg.restapi.get(key)
        return str(value) if value else None

    try:
        guard = Guard.from_config(cfg.restapi)
    except ValueError as exc:
        print(f"howdah: config error: {exc}", file=sys.stderr)
        return 2

    def routes() -> list[Any]:  # Tornado's handlers load with the first request they serve
        from howdah.api.routes import control_routes
        return control_routes(agent.control, cfg.restapi, guard)
    api = RestApiServer(lambda: agent.status, certfile=opt("certfile"), keyfile=opt("keyfile"),
                        cafile=opt("cafile"), verify_client=opt("verify_client"),
                        keyfile_password=opt("keyfile_password"), ciphers=opt("ciphers"),
                        extra_routes=routes)
    try:
        api.start(host or "0.0.0.0", int(port))
    except ValueError as exc:  # howdah.config.tls.TlsConfigError: names the field
        print(f"howdah: config error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"howdah: restapi.listen: cannot listen on {cfg.restapi['listen']}: {exc.strerror}",
              file=sys.stderr)
        return 1

    def on_term(signum: int, frame: FrameType | None) -> None:
        agent.stopping.set()
        agent.wake.set()

    def watch_api() -> None:
        # Without its API the agent cannot be checked or managed: never run on without it.
        while not agent.stopping.wait(1.0):
            if not api.is_alive():
                logging.getLogger("howdah").critical("REST API thread died: shutting down")
                agent.stopping.set()
                agent.wake.set()

    threading.Thread(target=watch_api, name="api-watch", daemon=True).start()
    health = archive_health.start(health_cfg, cfg.data_dir, agent.pg.db.params)
    # Everything loaded so far lives as long as the process: keep it out of
    # the collector's full passes, which would otherwise stall the API thread
    # for milliseconds at a time under a burst of health checks.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGTERM, on_term)
    # SIGHUP: what POST /reload does (the YAML read again, postgres reloaded), as Patroni
    signal.signal(signal.SIGHUP, lambda signum, frame: agent.ask_reload())
    signal.signal(signal.SIGINT, on_term)
    try:
        agent.run()
    finally:
        agent.shutdown()
        health.stop()
        api.stop()
    logging.getLogger("howdah").info("stopped")
    return agent.exit_code


if __name__ == "__main__":
    sys.exit(main())
