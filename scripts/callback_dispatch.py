#!/usr/bin/python3
"""howdah-callback: run several callback hooks for one agent event.

The agent runs ONE command per callback key as ``<cmd> <action> <role> <scope>``.  The
entrypoint sets every key to this dispatcher, which runs the configured hooks one after the
other in the order given (the entrypoint uses: user script, VIP, AWS), each with the same three
arguments.  A failing, hung or missing hook is logged and does not stop the ones after it.

    howdah-callback [--log FILE] [--timeout SECONDS] --run NAME=COMMAND [--run ...] \\
                    ACTION ROLE SCOPE

Each hook's output and outcome (exit code, duration) are logged, one line each, to FILE
(the entrypoint passes the container's log, /proc/1/fd/1) or to stderr when FILE cannot be
opened.  The exit code is 0 when every hook exited 0, else 1.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Mapping, Sequence, TextIO

from howdah.agent.callbacks import kill_tree  # the agent's: the hook and everything it started


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="howdah-callback", description="run callback hooks in order")
    parser.add_argument("--run", action="append", default=[], metavar="NAME=COMMAND",
                        help="a hook to run (repeat; run in the order given)")
    parser.add_argument("--log", default="", help="append log lines to this file (default stderr)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds each hook may take (default 30)")
    parser.add_argument("action")
    parser.add_argument("role")
    parser.add_argument("scope")
    return parser.parse_args(list(argv))


class Log:
    def __init__(self, path: str) -> None:
        self.out: TextIO = sys.stderr
        if path:
            try:
                self.out = open(path, "a", encoding="utf-8", errors="replace")
            except OSError as exc:
                self.write(f"cannot open log {path} ({exc.strerror}); logging to stderr")

    def write(self, line: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
        try:
            self.out.write(f"{stamp} howdah-callback: {line}\n")
            self.out.flush()
        except OSError:
            pass


# What a hook gets from the agent's environment: the basics, plus its own variables for the
# VIP and AWS hooks.  The superuser's password, the REST API's credentials and the backups'
# keys stay out of every other hook; a user hook gets HOWDAH_HOOK_* variables passed through.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "SCOPE", "PGPORT", "APIPORT",
            "HOWDAH_RUN_DIR", "HOWDAH_LEADER_CHECK")
HOOK_PREFIXES = {"vip": ("VIP_", "HOWDAH_VIP_"),
                 "aws": ("AWS_", "EIP_", "ELASTIC_IP", "HOWDAH_AWS_", "HOWDAH_ROLE_TAG")}


def hook_env(name: str, env: Mapping[str, str]) -> dict[str, str]:
    prefixes = ("HOWDAH_HOOK_",) + HOOK_PREFIXES.get(name, ())
    return {k: v for k, v in env.items() if k in BASE_ENV or k.startswith(prefixes)}


def run_hook(name: str, command: str, event: list[str], timeout: float, log: Log) -> bool:
    """Run one hook; log its output and outcome; True when it exited 0."""
    label = f"{name} {' '.join(event)}"
    try:
        argv = shlex.split(command) + event
    except ValueError as exc:
        log.write(f"{label}: bad command {command!r}: {exc}")
        return False
    started = time.monotonic()
    try:
        # In the dispatcher's session (the agent started it in one of its own), so when the
        # agent cancels or times out the event, its tree kill reaches every hook process too.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env={**hook_env(name, os.environ), "HOWDAH_HOOK_TIMEOUT": f"{timeout:g}"})
    except OSError as exc:
        log.write(f"{label}: cannot run {argv[0]}: {exc.strerror or exc}")
        return False
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)  # the hook and everything it started
        try:
            output, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a child left the group and holds the pipe
            proc.kill()
            output = b""
        for line in (output or b"").decode(errors="replace").splitlines():
            log.write(f"[{name}] {line}")
        log.write(f"{label}: killed after the {timeout:g}s timeout")
        return False
    took = time.monotonic() - started
    for line in output.decode(errors="replace").splitlines():
        log.write(f"[{name}] {line}")
    log.write(f"{label}: exited with {proc.returncode} in {took:.2f}s")
    return proc.returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    log = Log(args.log)
    event = [args.action, args.role, args.scope]
    ok = True
    for spec in args.run:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command.strip():
            log.write(f"ignoring --run {spec!r}: write it as NAME=COMMAND")
            ok = False
            continue
        ok = run_hook(name, command, event, args.timeout, log) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
