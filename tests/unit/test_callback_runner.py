"""Callback runner: problems reported up front, newer cancels older, timeouts kill."""
from __future__ import annotations

import time
from pathlib import Path

from howdah.agent.callbacks import Callbacks, problems


def test_problems_name_the_callback_and_the_fix(tmp_path: Path) -> None:
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\n")
    found = problems({"on_start": str(tmp_path / "missing.sh"), "on_stop": str(plain),
                      "on_bogus": "/bin/true", "on_reload": "/bin/true"})
    assert any("on_start" in p and "does not exist" in p for p in found)
    assert any("on_stop" in p and "chmod +x" in p for p in found)
    assert any("on_bogus" in p and "unknown callback" in p for p in found)
    assert not any(p.startswith("postgresql.callbacks.on_reload") for p in found)


def script(tmp_path: Path, body: str) -> str:
    p = tmp_path / f"cb{len(list(tmp_path.glob('cb*.sh')))}.sh"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


def test_callback_gets_action_role_scope_and_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cb = Callbacks({"on_start": script(tmp_path, f'echo "$@" >> {out}; sleep 30\n')}, "demo")
    cb.fire("on_start", "replica")
    proc = cb._running
    assert proc is not None and proc.poll() is None, "fire() must not wait for the script"
    deadline = time.monotonic() + 60
    # the shell creates the file before echo writes into it: wait for the whole line
    while not (out.exists() and out.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.read_text().split() == ["on_start", "replica", "demo"]


def test_newer_callback_cancels_older_and_hung_one_is_killed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cb = Callbacks({"on_start": script(tmp_path, f'sleep 30; echo "$1" >> {out}\n'),
                    "on_role_change": script(tmp_path, f'echo "$1" >> {out}\n')}, "demo",
                   timeout=1.0)
    cb.fire("on_start", "replica")
    first = cb._running
    time.sleep(0.3)
    cb.fire("on_role_change", "primary")
    assert first is not None and first.wait(5) < 0, "the older callback must be cancelled"
    cb.wait_idle(5)
    time.sleep(0.2)
    assert out.read_text().split() == ["on_role_change"]
    slow = Callbacks({"on_stop": script(tmp_path, "sleep 30\n")}, "demo", timeout=0.5)
    slow.fire("on_stop", "primary")
    proc = slow._running
    assert proc is not None and proc.wait(5) < 0, "a hung callback is killed at its timeout"
