"""A real S3-compatible server over TLS for the tests: moto in server mode (PyPI ``moto[server]``)
behind HAProxy, which terminates TLS with a certificate from a throw-away test CA.

Why this shape (measured with pgBackRest 2.45): moto serving TLS itself breaks pgBackRest at the
end of each PUT ("TLS error ... unexpected eof"), while HAProxy in front works; pgBackRest
matches the endpoint against the certificate's DNS names, not its IP addresses, so the
certificate says ``DNS:localhost`` and the endpoint is ``localhost:<port>``.

    with S3Server() as s3:
        s3.create_bucket("backups")
        s3.endpoint      # 'localhost:<port>' (HTTPS)
        s3.ca_file       # PEM of the CA, readable by the postgres user

Ports come from harness.ports (free, never shared between parallel runs).  Everything lives in
one temporary directory removed by stop().
"""
from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .config import HOWDAH_VENV
from .ports import Reservation

ACCESS_KEY = "howdah-test-key"
SECRET_KEY = "howdah-test-secret"
REGION = "us-east-1"


def _write_ca_and_cert(directory: Path) -> tuple[Path, Path]:
    """A CA and a server certificate (DNS:localhost, IP:127.0.0.1) signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "howdah test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    bundle = directory / "server.pem"  # HAProxy wants certificate and key in one file
    bundle.write_bytes(cert.public_bytes(pem) + key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(ca_file, 0o644)
    os.chmod(bundle, 0o600)
    return ca_file, bundle


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class S3Server:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="howdah-s3-"))
        os.chmod(self.dir, 0o755)
        self._ports = Reservation()
        self.moto_port, self.port = self._ports.take_many(2)
        self.ca_file, self._bundle = _write_ca_and_cert(self.dir)
        self._procs: list[subprocess.Popen[bytes]] = []
        self.access_key, self.secret_key, self.region = ACCESS_KEY, SECRET_KEY, REGION

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def moto_url(self) -> str:
        """moto's own plain-HTTP port, for the test's control calls (policies, listing)."""
        return f"http://127.0.0.1:{self.moto_port}"

    def env(self) -> dict[str, str]:
        """The Spilo-style variables that point a container at this server."""
        return {"AWS_ENDPOINT": self.url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": self.region,
                "AWS_CA_BUNDLE": str(self.ca_file)}

    def _spawn(self, argv: list[str], log: str) -> None:
        out = open(self.dir / log, "ab")
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                                    start_new_session=True)
        finally:
            out.close()
        self._procs.append(proc)

    def start(self, timeout: float = 60.0) -> "S3Server":
        moto = HOWDAH_VENV / "bin" / "moto_server"
        self._spawn([str(moto), "-H", "127.0.0.1", "-p", str(self.moto_port)], "moto.log")
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(f"""global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-request 60s
frontend s3
    bind 127.0.0.1:{self.port} ssl crt {self._bundle}
    default_backend moto
backend moto
    server moto 127.0.0.1:{self.moto_port}
""")
        self._spawn(["haproxy", "-db", "-f", str(cfg)], "haproxy.log")
        deadline = time.monotonic() + timeout
        context = ssl.create_default_context(cafile=str(self.ca_file))
        last: Exception | None = None
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"S3 server process {proc.args[0]} exited ({proc.returncode}): "
                                       + self.log_text())
            if _port_open(self.moto_port) and _port_open(self.port):
                try:
                    with urllib.request.urlopen(self.url + "/", timeout=5, context=context):
                        return self
                except urllib.error.HTTPError:
                    return self  # any HTTP answer through TLS: both are up
                except OSError as exc:
                    last = exc
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"S3 server not up within {timeout}s ({last!r}): " + self.log_text())

    def client(self) -> Any:
        """boto3 S3 client on moto's plain port (the test's own control channel)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.moto_url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        found: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [o["Key"] for o in page.get("Contents", [])]
        return found

    def log_text(self, tail: int = 40) -> str:
        text = ""
        for name in ("moto.log", "haproxy.log"):
            path = self.dir / name
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-tail:]
                text += f"\n--- {name} ---\n" + "\n".join(lines)
        return text

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self._procs.clear()
        self._ports.release()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
