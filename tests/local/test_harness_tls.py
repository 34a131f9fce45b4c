"""harness.tls: the CA and certificates verify as the TLS tests need them to."""
from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import threading
import urllib.request

import pytest

from harness.tls import OPENSSL, TestCA, have_openssl

pytestmark = pytest.mark.skipif(not have_openssl(), reason="needs the openssl CLI")


def _verify(ca: TestCA, cert: str, purpose: str) -> None:
    out = subprocess.run([OPENSSL, "verify", "-CAfile", ca.cert, "-purpose", purpose, cert],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_certificates_verify_for_their_purpose_and_names() -> None:
    with TestCA() as ca:
        server = ca.issue("server")
        client = ca.issue("client", client=True, server=False)
        both = ca.issue("member", client=True)
        _verify(ca, server.cert, "sslserver")
        _verify(ca, client.cert, "sslclient")
        _verify(ca, both.cert, "sslserver")
        _verify(ca, both.cert, "sslclient")
        text = subprocess.run([OPENSSL, "x509", "-noout", "-text", "-in", server.cert],
                              capture_output=True, text=True, check=True).stdout
        assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
        assert oct(os.stat(server.key).st_mode & 0o777) == "0o600"
        directory = ca.dir
    assert not directory.exists()


def test_encrypted_key_needs_its_password() -> None:
    with TestCA() as ca:
        locked = ca.issue("locked", password="s3cret")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with pytest.raises(ssl.SSLError):
            ctx.load_cert_chain(locked.cert, locked.key, password="wrong")
        ctx.load_cert_chain(locked.cert, locked.key, password=locked.password)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_mutual_tls_handshake(host: str) -> None:
    with TestCA() as ca:
        server, client = ca.issue("server"), ca.issue("client", client=True, server=False)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(*server.pair)
        sctx.load_verify_locations(ca.cert)
        sctx.verify_mode = ssl.CERT_REQUIRED
        httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        httpd.socket = sctx.wrap_socket(httpd.socket, server_side=True)
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            cctx = ssl.create_default_context(cafile=ca.cert)
            cctx.load_cert_chain(*client.pair)
            url = f"https://{host}:{httpd.server_address[1]}/"
            with urllib.request.urlopen(url, context=cctx, timeout=30) as resp:
                assert resp.status == 200
        finally:
            httpd.shutdown()
            httpd.server_close()
