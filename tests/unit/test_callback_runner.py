"""Callback runner: problems reported up front, newer cancels older, timeouts kill."""
from __future__ import annotations

import sys
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


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _wait_pid(path: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip().isdigit():
            return int(path.read_text())
        time.sleep(0.05)
    raise TimeoutError(f"no pid in {path}")


def _wait_dead(pid: int) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_cancel_kills_the_whole_tree_even_a_child_in_its_own_session(tmp_path: Path) -> None:
    pidfile = tmp_path / "escapee"
    body = f"setsid sleep 300 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; sleep 300\n"
    cb = Callbacks({"on_start": script(tmp_path, body), "on_stop": "/bin/true"}, "demo", timeout=60)
    cb.fire("on_start", "replica")
    escapee = _wait_pid(pidfile)
    assert _alive(escapee)
    cb.fire("on_stop", "replica")  # cancels on_start
    assert _wait_dead(escapee), "a process the hook moved to its own session survived the cancel"


def test_timeout_kills_hooks_run_by_the_dispatcher_and_their_children(tmp_path: Path) -> None:
    dispatcher = Path(__file__).resolve().parents[2] / "scripts" / "callback_dispatch.py"
    pidfile = tmp_path / "escapee"
    hook = script(tmp_path, f"setsid sleep 300 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; sleep 300\n")
    cmd = f"{sys.executable} {dispatcher} --timeout 300 --run user={hook}"
    cb = Callbacks({"on_role_change": cmd}, "demo", timeout=2.0)
    cb.fire("on_role_change", "primary")
    escapee = _wait_pid(pidfile)
    cb.wait_idle(60)
    assert _wait_dead(escapee), "the agent's timeout must end the dispatcher's hooks and what they started"
