"""A rotated REST API certificate is served to new connections without a restart."""
from __future__ import annotations

import shutil
import socket
import ssl
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.tls import TestCA, have_openssl  # noqa: E402

from howdah.api.server import RestApiServer  # noqa: E402
from howdah.core.status import NodeStatus  # noqa: E402
from howdah.config.tls import CertReloader, server_context  # noqa: E402

pytestmark = pytest.mark.skipif(not have_openssl(), reason="needs the openssl CLI")


def served_cn(port: int, ca: str) -> str:
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        subject = dict(item[0] for item in tls.getpeercert()["subject"])
    return str(subject["commonName"])


def test_rotated_certificate_is_served_without_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RestApiServer, "CERT_CHECK_SECONDS", 0.1)
    with TestCA(tmp_path / "ca", owner=None) as ca:
        first, second = ca.issue("first", cn="first"), ca.issue("second", cn="second")
        cert, key = tmp_path / "api.crt", tmp_path / "api.key"
        shutil.copy(first.cert, cert)
        shutil.copy(first.key, key)
        api = RestApiServer(lambda: NodeStatus(name="n1", state="running", role="replica"),
                            certfile=str(cert), keyfile=str(key), use_uvloop=False)
        api.start("127.0.0.1", 0)
        try:
            assert served_cn(api.port, ca.cert) == "first"
            shutil.copy(second.cert, cert)
            shutil.copy(second.key, key)
            deadline = time.monotonic() + 30
            while served_cn(api.port, ca.cert) != "second" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert served_cn(api.port, ca.cert) == "second"
        finally:
            api.stop()


def test_unloadable_files_keep_the_previous_certificate(tmp_path: Path) -> None:
    with TestCA(tmp_path / "ca", owner=None) as ca:
        pair = ca.issue("first")
        cert, key = tmp_path / "api.crt", tmp_path / "api.key"
        shutil.copy(pair.cert, cert)
        shutil.copy(pair.key, key)
        cfg = {"certfile": str(cert), "keyfile": str(key)}
        ctx = server_context(cfg)
        assert ctx is not None
        reloader = CertReloader(ctx, cfg)
        assert not reloader.check()  # unchanged
        cert.write_text("half-written\n")
        assert not reloader.check()  # reported, previous certificate kept
        shutil.copy(pair.cert, cert)
        assert reloader.check()
