"""scripts/callback_dispatch.py: every hook runs, in order, with the same three arguments."""
from __future__ import annotations

import subprocess
import time
import sys
from pathlib import Path

from harness.scripts import recording_program

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "callback_dispatch.py"


def dispatch(tmp_path: Path, *runs: str, timeout: str = "5") -> tuple[int, list[str], str]:
    argv = [sys.executable, str(SCRIPT), "--log", str(tmp_path / "log"), "--timeout", timeout]
    for run in runs:
        argv += ["--run", run]
    done = subprocess.run(argv + ["on_role_change", "primary", "demo"], capture_output=True, text=True, timeout=30)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
    return done.returncode, calls, log


def test_all_hooks_run_in_order_with_the_same_arguments(tmp_path: Path) -> None:
    user, vip, aws = (recording_program(tmp_path, n, "echo said $1") for n in ("user", "vip", "aws"))
    code, calls, log = dispatch(tmp_path, f"user={user} --flag", f"vip={vip}", f"aws={aws}")
    assert code == 0
    assert calls == ["user --flag on_role_change primary demo", "vip on_role_change primary demo",
                     "aws on_role_change primary demo"]
    assert "[vip] said on_role_change" in log
    assert "aws on_role_change primary demo: exited with 0 in" in log


def test_a_failing_hook_does_not_stop_the_others(tmp_path: Path) -> None:
    user = recording_program(tmp_path, "user", "echo boom >&2; exit 7")
    aws = recording_program(tmp_path, "aws", "exit 0")
    code, calls, log = dispatch(tmp_path, f"user={user}", f"vip={tmp_path}/missing", f"aws={aws}")
    assert code == 1
    assert [c.split()[0] for c in calls] == ["user", "aws"]
    assert "[user] boom" in log and "user on_role_change primary demo: exited with 7" in log
    assert "vip on_role_change primary demo: cannot run" in log


def test_a_hung_hook_is_killed_and_the_next_runs(tmp_path: Path) -> None:
    slow = recording_program(tmp_path, "user", "sleep 30")
    aws = recording_program(tmp_path, "aws", "exit 0")
    code, calls, log = dispatch(tmp_path, f"user={slow}", f"aws={aws}", timeout="0.5")
    assert code == 1 and [c.split()[0] for c in calls] == ["user", "aws"]
    assert "killed after the 0.5s timeout" in log


def test_log_falls_back_to_stderr(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--log", str(tmp_path / "no" / "dir"), "--run",
                           "x=/bin/true", "on_start", "replica", "demo"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "cannot open log" in done.stderr and "x on_start replica demo: exited with 0" in done.stderr


def test_a_timeout_also_ends_what_the_hook_started(tmp_path: Path) -> None:
    """A hook that leaves a child holding its output must neither hang the
    dispatcher nor outlive the timeout."""
    pidfile = tmp_path / "child.pid"
    slow = recording_program(tmp_path, "slow", f"sleep 300 &\necho $! > {pidfile}\nwait")
    started = time.monotonic()
    code, calls, log = dispatch(tmp_path, f"slow={slow}", timeout="1")
    assert time.monotonic() - started < 20
    assert code == 1 and "killed after the 1s timeout" in log
    child = int(pidfile.read_text())
    for _ in range(50):
        if not running(child):
            break
        time.sleep(0.1)
    assert not running(child), "the hook's child survived the timeout"


def running(pid: int) -> bool:
    """Alive and not a zombie (an init that does not reap leaves zombies behind)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_hooks_get_a_minimal_environment(tmp_path: Path) -> None:
    import os
    printer = tmp_path / "printenv"
    printer.write_text(f"#!/bin/sh\nenv > {tmp_path}/env.$(basename $0)\n")
    printer.chmod(0o755)
    for name in ("user", "vip", "aws"):
        (tmp_path / name).symlink_to(printer)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
           "PGPASSWORD_SUPERUSER": "su-secret", "PATRONI_RESTAPI_PASSWORD": "api-secret",
           "PATRONI_SUPERUSER_PASSWORD": "su-secret", "AWS_SECRET_ACCESS_KEY": "aws-secret",
           "VIP_ADDRESS": "10.0.0.5/24", "HOWDAH_HOOK_COLOUR": "blue", "SCOPE": "demo"}
    argv = [sys.executable, str(SCRIPT), "--timeout", "30"]
    for name in ("user", "vip", "aws"):
        argv += ["--run", f"{name}={tmp_path / name}"]
    done = subprocess.run(argv + ["on_start", "replica", "demo"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    seen = {name: (tmp_path / f"env.{name}").read_text() for name in ("user", "vip", "aws")}
    for text in seen.values():
        assert "su-secret" not in text and "api-secret" not in text
        assert "HOWDAH_HOOK_COLOUR=blue" in text and "SCOPE=demo" in text
    assert "VIP_ADDRESS" not in seen["user"] and "VIP_ADDRESS=10.0.0.5/24" in seen["vip"]
    assert "aws-secret" not in seen["user"] and "aws-secret" not in seen["vip"]
    assert "AWS_SECRET_ACCESS_KEY=aws-secret" in seen["aws"]  # the AWS hook needs its own keys


def test_a_timed_out_hook_dies_with_its_children(tmp_path: Path) -> None:
    import os
    pidfile = tmp_path / "child"
    slow = recording_program(tmp_path, "slow", f"sleep 300 & echo $! > {pidfile}; wait")
    started = time.monotonic()
    code, _calls, log = dispatch(tmp_path, f"user={slow}", timeout="1")
    assert code == 1 and "killed after the 1s timeout" in log
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as handle:
                if handle.read().rpartition(")")[2].split()[0] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, 9)
        raise AssertionError("the hook's child outlived the timeout")
