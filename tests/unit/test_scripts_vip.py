"""scripts/vip_hook.py with fake ip and arping programs that record their arguments."""
from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scripts import load_script, recording_program

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "vip_hook.py"


def run(tmp_path: Path, action: str, role: str, ip_body: str = "exit 0", **env: str) -> tuple[int, list[str], str]:
    full = {"PATH": "/usr/bin:/bin", "VIP_ADDRESS": "10.9.8.7/24", "VIP_INTERFACE": "eth1", "HOWDAH_LEADER_CHECK": "off",
            "HOWDAH_VIP_IP": recording_program(tmp_path, "ip", ip_body), "HOWDAH_VIP_ARPING": recording_program(tmp_path, "arping", "exit 0"),
            **env}
    done = subprocess.run([sys.executable, str(SCRIPT), action, role, "demo"], env=full, capture_output=True,
                          text=True, timeout=30)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return done.returncode, calls, done.stderr


@pytest.mark.parametrize("action, role", [("on_start", "primary"), ("on_role_change", "primary"),
                                          ("on_role_change", "standby_leader"), ("on_restart", "primary")])
def test_becoming_primary_adds_and_announces(tmp_path: Path, action: str, role: str) -> None:
    code, calls, err = run(tmp_path, action, role)
    assert code == 0, err
    assert calls == ["ip addr add 10.9.8.7/24 dev eth1", "arping -U -c 3 -I eth1 10.9.8.7"]
    assert "added on eth1" in err and "gratuitous ARP" in err


@pytest.mark.parametrize("action, role", [("on_role_change", "demoted"), ("on_role_change", "replica"),
                                          ("on_start", "replica"), ("on_stop", "primary")])
def test_other_roles_and_stop_remove_it(tmp_path: Path, action: str, role: str) -> None:
    code, calls, err = run(tmp_path, action, role)
    assert code == 0, err
    assert calls == ["ip addr del 10.9.8.7/24 dev eth1"]


def test_idempotent(tmp_path: Path) -> None:
    code, calls, err = run(tmp_path, "on_start", "primary",
                           ip_body="echo 'RTNETLINK answers: File exists' >&2; exit 2")
    assert code == 0 and "already on eth1" in err and len(calls) == 2
    code, _, err = run(tmp_path, "on_stop", "primary",
                       ip_body="echo 'RTNETLINK answers: Cannot assign requested address' >&2; exit 2")
    assert code == 0 and "is not on eth1" in err


def test_idempotent_with_extended_errors(tmp_path: Path) -> None:
    # iproute2 6.x reports the kernel's extended ack instead of strerror
    code, calls, err = run(tmp_path, "on_role_change", "primary",
                           ip_body="echo 'Error: ipv4: Address already assigned.' >&2; exit 2")
    assert code == 0 and "already on eth1" in err and calls[-1].startswith("arping")
    code, _, err = run(tmp_path, "on_start", "replica", ip_body="echo 'Error: ipv4: Address not found.' >&2; exit 2")
    assert code == 0 and "is not on eth1" in err


def test_netmask_and_default_prefix(tmp_path: Path) -> None:
    _, calls, _ = run(tmp_path, "on_start", "primary", VIP_ADDRESS="10.9.8.7", VIP_NETMASK="255.255.0.0")
    assert calls[0] == "ip addr add 10.9.8.7/16 dev eth1"
    (tmp_path / "calls").unlink()
    _, calls, _ = run(tmp_path, "on_start", "primary", VIP_ADDRESS="10.9.8.7", VIP_NETMASK="")
    assert calls[0] == "ip addr add 10.9.8.7/32 dev eth1"


def test_missing_net_admin_is_one_clear_line(tmp_path: Path) -> None:
    code, calls, err = run(tmp_path, "on_role_change", "primary",
                           ip_body="echo 'RTNETLINK answers: Operation not permitted' >&2; exit 2")
    assert code == 3 and len(calls) == 1  # no arping for an address that is not there
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "Operation not permitted" in lines[0] and "cap_add: [NET_ADMIN]" in lines[0]


def test_exec_refused_for_the_capability_copy_is_the_same_line(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # without NET_ADMIN in the container, exec of the cap_net_admin copy of ip fails with EPERM
    hook = load_script("scripts/vip_hook.py")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(hook.subprocess, "run", refuse)
    code = hook.run("on_role_change", "primary", "demo", {"VIP_ADDRESS": "10.9.8.7/24", "HOWDAH_VIP_IP": "/x/ip",
                                                          "HOWDAH_LEADER_CHECK": "off"})
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and "cap_add: [NET_ADMIN]" in err[0] and "10.9.8.7/24 on eth0" in err[0]


def test_bad_configuration(tmp_path: Path) -> None:
    code, calls, err = run(tmp_path, "on_start", "primary", VIP_ADDRESS="")
    assert code == 2 and calls == [] and "VIP_ADDRESS is not set" in err
    code, _, err = run(tmp_path, "on_start", "primary", VIP_ADDRESS="10.9.8.300")
    assert code == 2 and "not an address" in err


class _Agent:
    """A stand-in local REST API answering /primary and /standby-leader with fixed codes."""

    def __init__(self, codes: dict[str, int]) -> None:
        import http.server
        import threading
        codes_ = codes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(codes_.get(self.path, 404))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("codes, role, added", [
    ({"/primary": 200}, "primary", True),
    ({"/primary": 503}, "primary", False),  # demoted since the event: leave the address alone
    ({"/standby-leader": 200, "/primary": 503}, "standby_leader", True),
    ({"/standby-leader": 503, "/primary": 200}, "standby_leader", False),
])
def test_the_address_moves_only_while_this_node_is_still_the_leader(
        tmp_path: Path, codes: dict[str, int], role: str, added: bool) -> None:
    agent = _Agent(codes)
    try:
        code, calls, err = run(tmp_path, "on_role_change", role, HOWDAH_LEADER_CHECK=agent.url)
    finally:
        agent.close()
    assert any(c.startswith("ip addr add") for c in calls) is added, (calls, err)
    if not added:
        assert code == 4 and "not adding 10.9.8.7/24" in err and "503" in err


def test_no_agent_answering_means_no_address(tmp_path: Path) -> None:
    code, calls, err = run(tmp_path, "on_start", "primary", HOWDAH_LEADER_CHECK="http://127.0.0.1:9")
    assert code == 4 and not calls and "cannot ask the local agent" in err
