"""Running external tools with their output logged line by line."""
from __future__ import annotations

import logging
import os
import re
import subprocess
from typing import Callable, Mapping, Sequence

log = logging.getLogger(__name__)
PERCENT = re.compile(r"\((\d+)%\)")


def run_logged(
    cmd: Sequence[str],
    what: str,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> int:
    """Run cmd, logging its output as it comes; percentages are logged in 10% steps."""
    log.info("%s: running %s", what, " ".join(cmd))
    try:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
    except OSError as exc:
        log.error("%s: cannot run %s: %s", what, cmd[0], exc)
        return 127
    assert proc.stdout is not None
    last_step = -1
    buf = b""
    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        buf += chunk
        parts = re.split(rb"[\r\n]", buf)
        buf = parts.pop()
        for raw in parts:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if on_line:
                on_line(line)
            m = PERCENT.search(line)
            if m:
                step = int(m.group(1)) // 10
                if step > last_step:
                    last_step = step
                    log.info("%s: %s%% done (%s)", what, m.group(1), line)
                continue
            log.info("%s: %s", what, line)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    log.info("%s: exited with %s", what, code)
    return code
