"""The entrypoint's nudge of supervisord: one connection to its control socket once it listens
(supervisord spawns its programs after its first poll, which otherwise waits a second)."""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from howdah.entrypoint import system


def test_connects_once_the_socket_listens_then_exits(tmp_path: Path) -> None:
    path = str(tmp_path / "supervisor.sock")
    pid = system.nudge_when_listening(path, timeout=30)
    time.sleep(0.2)  # the child tries before anything listens
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        server.settimeout(20)
        conn, _ = server.accept()
        conn.close()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_gives_up_after_its_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    pid = system.nudge_when_listening(str(tmp_path / "never.sock"), timeout=0.3)
    done = threading.Event()
    result: list[int] = []

    def reap() -> None:
        result.append(os.waitpid(pid, 0)[1])
        done.set()
    threading.Thread(target=reap, daemon=True).start()
    assert done.wait(20)
    assert os.WIFEXITED(result[0]) and os.WEXITSTATUS(result[0]) == 0
    assert time.monotonic() - started < 20
