"""Spilo's TLS variables: where PostgreSQL's and the REST API's certificates live, and which PEM
texts the entrypoint writes there.  Pure: environment in, paths and texts out.

For each file there is a path variable (``SSL_CERTIFICATE_FILE``) and a content variable
(``SSL_CERTIFICATE``).  PEM text in the content variable is written to the path (or to a default
under the run directory); both the path and the content may be given, as in Spilo.  A content
variable that holds a single-line path instead of PEM text names the file (Howdah's older form).
With no certificate for PostgreSQL at all a self-signed one is made at start; the REST API gets
TLS only when it is given a certificate and key.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import EnvError
from .values import Env, get

PEM_MARK = "-----BEGIN"


@dataclass(frozen=True)
class Tls:
    cert_file: str
    key_file: str
    ca_file: str = ""
    crl_file: str = ""
    restapi_cert: str = ""
    restapi_key: str = ""
    restapi_ca: str = ""
    writes: tuple[tuple[str, str, int], ...] = ()  # (path, PEM text, mode)

    @property
    def restapi(self) -> bool:
        return bool(self.restapi_cert and self.restapi_key)

    @property
    def watched(self) -> tuple[str, ...]:
        """Every certificate file in use: a change to any of them is reloaded without a restart."""
        return tuple(p for p in (self.cert_file, self.key_file, self.ca_file, self.crl_file,
                                 self.restapi_cert, self.restapi_key, self.restapi_ca) if p)


def _one(env: Env, name: str, default: str, mode: int, writes: list[tuple[str, str, int]]) -> str:
    """The file's path for the pair NAME / NAME_FILE; PEM text in NAME is queued for writing."""
    content = (env.get(name) or "").strip()
    path = get(env, f"{name}_FILE")
    if content and not content.startswith(PEM_MARK):
        if "\n" in content or path:
            raise EnvError(name, "is not PEM text (it does not start with -----BEGIN)",
                           f"give the PEM text itself, or the file's path in {name}_FILE")
        return content  # a path, the older form
    if path and "\n" in path:
        raise EnvError(f"{name}_FILE", "holds a line break", "give one file path")
    if content:
        path = path or default
        writes.append((path, content + "\n", mode))
    return path


def from_env(env: Env, run_dir: str) -> Tls:
    writes: list[tuple[str, str, int]] = []
    ssl = f"{run_dir}/ssl"
    cert = _one(env, "SSL_CERTIFICATE", f"{ssl}/server.crt", 0o644, writes) or f"{ssl}/server.crt"
    key = _one(env, "SSL_PRIVATE_KEY", f"{ssl}/server.key", 0o600, writes) or f"{ssl}/server.key"
    ca = _one(env, "SSL_CA", f"{ssl}/ca.crt", 0o644, writes)
    crl = _one(env, "SSL_CRL", f"{ssl}/server.crl", 0o644, writes)
    api_cert = _one(env, "SSL_RESTAPI_CERTIFICATE", f"{ssl}/restapi.crt", 0o644, writes)
    api_key = _one(env, "SSL_RESTAPI_PRIVATE_KEY", f"{ssl}/restapi.key", 0o600, writes)
    api_ca = _one(env, "SSL_RESTAPI_CA", f"{ssl}/restapi-ca.crt", 0o644, writes)
    if bool(api_cert) != bool(api_key):
        given, missing = ("SSL_RESTAPI_CERTIFICATE", "SSL_RESTAPI_PRIVATE_KEY") if api_cert else \
            ("SSL_RESTAPI_PRIVATE_KEY", "SSL_RESTAPI_CERTIFICATE")
        raise EnvError(missing, f"not set (nor {missing}_FILE) while {given} or {given}_FILE is",
                       "give both (or their _FILE paths) to serve the REST API over TLS")
    return Tls(cert, key, ca, crl, api_cert, api_key, api_ca, tuple(writes))
