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
import json
import re
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

from .config import HOWDAH_VENV, REPO, _runnable_as_postgres
from .node import AgentNode
from .ports import Reservation

ACCESS_KEY = "howdah-test-key"
SECRET_KEY = "howdah-test-secret"
REGION = "us-east-1"
BUCKET = "howdah-backups"


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

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        out = open(self.dir / log, "ab")
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                                    start_new_session=True)
        finally:
            out.close()
        self._procs.append(proc)
        return proc

    def pause(self) -> None:
        """Stop the TLS front (HAProxy): the endpoint refuses connections until resume()."""
        proc = self._haproxy
        self._procs.remove(proc)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)

    def resume(self, timeout: float = 30.0) -> None:
        self._haproxy = self._spawn(["haproxy", "-db", "-f", str(self.dir / "haproxy.cfg")], "haproxy.log")
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if time.monotonic() > deadline or self._haproxy.poll() is not None:
                raise RuntimeError("HAProxy did not come back: " + self.log_text())
            time.sleep(0.2)

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
        self._haproxy = self._spawn(["haproxy", "-db", "-f", str(cfg)], "haproxy.log")
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


def python() -> str:
    """A python3 the postgres user can run, with psycopg2."""
    if _runnable_as_postgres(str(HOWDAH_VENV / "bin" / "python")):
        return str(HOWDAH_VENV / "bin" / "python")
    site = sorted((HOWDAH_VENV / "lib").glob("python3*/site-packages"))
    return f"env PYTHONPATH={site[-1]} /usr/bin/python3"


class Rendered:
    """pgbackrest.conf files rendered by the entrypoint (settings + templates, from Spilo's
    variables pointing at `s3`), one per node: the repository part is exactly the image's."""

    def __init__(self, s3: S3Server, scope: str, **env: str) -> None:
        self.s3, self.scope, self.env = s3, scope, env
        self.dir = Path(tempfile.mkdtemp(prefix="howdah-s3conf-"))
        os.chmod(self.dir, 0o777)
        self.shared = self.render(None)

    def render(self, node: AgentNode | None) -> Path:
        """This cluster's pgbackrest.conf for `node` (or shared by all: pg1-path given per call)."""
        text = self.files(node)["pgbackrest.conf"]
        path = self.dir / f"pgbackrest-{node.name if node else 'shared'}.conf"
        path.write_text(text)
        os.chmod(path, 0o644)  # the agents run as postgres (a test-only copy of the keys)
        return path

    def files(self, node: AgentNode | None) -> dict[str, str]:
        """Every file the entrypoint renders (howdah.yml, pgbackrest*.conf), for `node`."""
        env = {"SCOPE": self.scope, "WAL_S3_BUCKET": BUCKET, **self.s3.env(), "HOWDAH_RUN_DIR": str(self.dir),
               "PGUSER_SUPERUSER": "postgres", **self.env}
        if node is not None:
            env.update(PGDATA=str(node.data_dir), PGPORT=str(node.pg_port))
        from howdah.entrypoint import render, settings
        from howdah.entrypoint.memory import sizing

        s = settings.load(env, settings.Facts(hostname="n", ip="127.0.0.1", memory=sizing(1024 ** 3)))
        out = {}
        for name, (text, _mode) in render.render_all(s).items():
            if node is not None and name.startswith("pgbackrest"):  # the harness's socket directory
                text = re.sub(r"(?m)^pg1-socket-path=.*$", f"pg1-socket-path={node.workdir}", text)
            out[name] = text
        return out

    def cmd(self, conf: Path) -> str:
        return f"pgbackrest --config={conf} --stanza={self.scope}"

    def archiving(self) -> dict[str, Any]:
        """extra= for a cluster that archives to and restores WAL from the bucket."""
        here = '--pg1-path="$PWD"'  # archive and restore commands run in the data directory
        return {"bootstrap": {"dcs": {"postgresql": {"parameters": {
            "archive_mode": "on", "archive_command": f"{self.cmd(self.shared)} {here} archive-push %p"}}}},
            "postgresql": {"recovery_conf": {
                "restore_command": f'{self.cmd(self.shared)} {here} archive-get %f "%p"'}}}

    def run(self, *argv: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """argv as the postgres user (as the agents run pgBackRest)."""
        done = subprocess.run(list(argv), user="postgres", group="postgres", capture_output=True, text=True,
                              timeout=600, cwd=self.dir, env={**os.environ, **(env or {})})
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def backups(self) -> list[dict[str, Any]]:
        out = self.run(*self.cmd(self.shared).split(), "info", "--output=json").stdout
        entry = next((e for e in json.loads(out) if e["name"] == self.scope), {})
        return list(entry.get("backup") or [])

    def keeper(self, node: AgentNode, *extra: str, check: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """One round of scripts/backup_keeper.py on `node` (--once, plus extra)."""
        return self.run(*python().split(), str(REPO / "scripts/backup_keeper.py"), f"--config={self.render(node)}",
                        f"--stanza={self.scope}", f"--api-url={node.api_url}/patroni",
                        f"--status-file={self.dir / 'status.json'}", "--once", *extra, check=check, env=env)

    def status(self) -> dict[str, Any]:
        path = self.dir / "status.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
