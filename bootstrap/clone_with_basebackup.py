#!/usr/bin/python3
"""howdah-clone-basebackup: bootstrap a new cluster as a copy of a running one.

Custom bootstrap method (``bootstrap.method: clone_with_basebackup``): the agent calls it with
``--scope`` and ``--datadir``; the image adds ``--host --port --user`` from CLONE_HOST,
CLONE_PORT and CLONE_USER.  The password comes from CLONE_PASSWORD in the environment (never
the command line).  pg_basebackup streams the WAL it needs, so the copy starts consistent;
progress goes to stdout (the agent's log) at most every --progress-every seconds.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


def log(message: str) -> None:
    print(f"clone-basebackup: {message}", flush=True)


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    return f"/usr/lib/postgresql/{os.environ.get('PGVERSION', '15')}/bin/{name}"


def run_with_progress(argv: list[str], env: dict[str, str], every: float) -> int:
    """Run argv; print its lines, and its \\r-refreshed progress lines at most every `every` s."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    buffer, last = b"", 0.0
    while True:
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        parts = re.split(rb"[\r\n]", buffer + chunk)
        buffer = parts.pop()
        for raw in parts:
            line = raw.decode(errors="replace").strip()
            progress = " kB (" in line and "%)" in line
            if line and (not progress or time.monotonic() - last >= every):
                log(line)
                last = time.monotonic() if progress else last
    if buffer.strip():
        log(buffer.decode(errors="replace").strip())
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="howdah-clone-basebackup")
    p.add_argument("--scope", default="")
    p.add_argument("--datadir", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", default="5432")
    p.add_argument("--user", default="standby")
    p.add_argument("--progress-every", type=float, default=5.0)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    datadir = Path(args.datadir)
    datadir.mkdir(parents=True, exist_ok=True)
    os.chmod(datadir, 0o700)
    env = dict(os.environ)
    if os.environ.get("CLONE_PASSWORD"):
        env["PGPASSWORD"] = os.environ["CLONE_PASSWORD"]
    log(f"cloning {args.host}:{args.port} as {args.user} into {datadir} (new cluster {args.scope})")
    started = time.monotonic()
    code = run_with_progress([pg_bin("pg_basebackup"), "-D", str(datadir), "-h", args.host, "-p", str(args.port),
                              "-U", args.user, "-X", "stream", "-c", "fast", "--no-password",
                              "--progress", "--verbose"], env, args.progress_every)
    if code != 0:
        log(f"pg_basebackup failed (exit {code})")
        return code
    for signal_file in ("standby.signal", "recovery.signal"):
        (datadir / signal_file).unlink(missing_ok=True)  # the clone starts as a primary
    log(f"clone finished in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
