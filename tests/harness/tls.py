"""Throw-away TLS material for tests: a self-signed CA and certificates it signs.

Made with the `openssl` CLI (no Python dependency). Every leaf certificate carries
the SANs DNS:localhost and IP:127.0.0.1, so both names verify. Typical use:

    with TestCA() as ca:                     # CA in a temp dir, removed on exit
        server = ca.issue("server")          # CertPair(cert, key) for a server
        client = ca.issue("client", client=True)
        locked = ca.issue("locked", password="s3cret")   # key encrypted (AES-256)
        ca.cert                              # path of the CA certificate (cafile)

or once per test module:  ca = TestCA(); ...; ca.cleanup().
Paths are plain str so they drop straight into YAML configs and env vars.
Keys are RSA 2048, mode 0600; certificates are valid for 2 days. Run as root, the
directory (0755) and every file belong to `owner` (default postgres, the user the
harness runs agents and PostgreSQL as), so agents can read their keys.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def have_openssl() -> bool:
    """True if the openssl CLI is installed (for pytest.mark.skipif)."""
    return os.path.exists(OPENSSL)


@dataclass(frozen=True)
class CertPair:
    cert: str
    key: str
    password: str | None = None  # the key's passphrase if it is encrypted

    @property
    def pair(self) -> tuple[str, str]:
        return (self.cert, self.key)


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")


class TestCA:
    """A self-signed CA in `workdir` (a new temp dir by default)."""

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, workdir: str | Path | None = None, cn: str = "howdah-test-ca",
                 owner: str | None = "postgres") -> None:
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="howdah-tls-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ids: tuple[int, int] | None = None
        if owner and os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(owner)
                self._ids = (pw.pw_uid, pw.pw_gid)
            except KeyError:
                pass
        os.chmod(self.dir, 0o755)
        self._own(self.dir)
        self.cert = str(self.dir / "ca.crt")
        self.key = str(self.dir / "ca.key")
        self._serial = 1
        _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
             "-subj", f"/CN={cn}", "-keyout", self.key, "-out", self.cert,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        os.chmod(self.key, 0o600)
        os.chmod(self.cert, 0o644)
        self._own(self.key, self.cert)

    def _own(self, *paths: str | Path) -> None:
        if self._ids is not None:
            for path in paths:
                os.chown(path, *self._ids)

    def issue(self, name: str, *, cn: str | None = None, client: bool = False,
              server: bool = True, password: str | None = None,
              sans: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1")) -> CertPair:
        """Issue `name`.crt/`name`.key signed by this CA.

        server=True adds serverAuth, client=True adds clientAuth to extendedKeyUsage
        (both may be set: one certificate for a member that serves and calls peers).
        password encrypts the key with AES-256 (for keyfile_password tests).
        """
        usages = [u for u, on in (("serverAuth", server), ("clientAuth", client)) if on]
        if not usages:
            raise ValueError("issue(): server and client are both False")
        key = self.dir / f"{name}.key"
        csr = self.dir / f"{name}.csr"
        crt = self.dir / f"{name}.crt"
        ext = self.dir / f"{name}.ext"
        ext.write_text(
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={','.join(usages)}\n"
            f"subjectAltName={','.join(sans)}\n")
        _run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn or name}",
             "-keyout", str(key), "-out", str(csr), cwd=self.dir)
        self._serial += 1
        _run("x509", "-req", "-in", str(csr), "-CA", self.cert, "-CAkey", self.key,
             "-set_serial", str(self._serial), "-days", "2", "-sha256",
             "-extfile", str(ext), "-out", str(crt), cwd=self.dir)
        if password is not None:
            plain = key.with_suffix(".plain")
            key.rename(plain)
            _run("pkey", "-in", str(plain), "-out", str(key), "-aes256",
                 "-passout", f"pass:{password}", cwd=self.dir)
            plain.unlink()
        os.chmod(key, 0o600)
        os.chmod(crt, 0o644)
        self._own(key, crt)
        csr.unlink()
        ext.unlink()
        return CertPair(str(crt), str(key), password)

    def cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "TestCA":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
