"""REST API client: Basic auth and TLS options from the config, JSON in and out."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import urllib3
import urllib3.exceptions

from howdah.config.tls import truthy
from howdah.core.models import Member

from .config import CtlConfig
from .errors import CtlError


class Unreachable(CtlError):
    """Nothing answered at the member's api_url."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def text(self) -> str:
        """The server's message: a plain string, or a JSON error/message field."""
        if isinstance(self.body, dict):
            for key in ("message", "error", "reason"):
                if self.body.get(key):
                    return str(self.body[key])
            return json.dumps(self.body)
        return str(self.body or "").strip()


def pool_for(ctl: Mapping[str, Any], restapi: Mapping[str, Any] | None = None) -> urllib3.PoolManager:
    """patronictl's TLS rule: check the server against ctl.cacert, else restapi.cafile
    (else the system CAs); present ctl.certfile/keyfile (keyfile_password) when set;
    ctl.insecure turns the host name check off, and with no ctl.certfile the whole check."""
    kw: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
    insecure = truthy(ctl.get("insecure"))
    if ctl.get("certfile"):
        kw.update(cert_file=str(ctl["certfile"]))
        if ctl.get("keyfile"):
            kw["key_file"] = str(ctl["keyfile"])
        if ctl.get("keyfile_password"):
            kw["key_password"] = str(ctl["keyfile_password"])
        if insecure:
            kw["assert_hostname"] = False
    elif insecure:
        kw["cert_reqs"] = "CERT_NONE"
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    cacert = ctl.get("cacert") or (restapi or {}).get("cafile")
    if cacert:
        kw["ca_certs"] = str(cacert)
    return urllib3.PoolManager(num_pools=4, retries=False, **kw)


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class ApiClient:
    def __init__(self, config: CtlConfig, timeout: float = 10.0) -> None:
        self.pool = pool_for(config.section("ctl"), config.section("restapi"))
        self.headers: dict[str, str] = {}
        auth = config.api_auth
        if auth:
            self.headers.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        self.timeout = timeout

    def call(self, member: Member, method: str, path: str, body: Any = None,
             timeout: float | None = None) -> Reply:
        """One request to the member's REST API; Unreachable when nothing answers."""
        if not member.api_url:
            raise Unreachable(f"{member.name} publishes no api_url in the DCS")
        base = member.api_url.rsplit("/patroni", 1)[0] if member.api_url.endswith("/patroni") \
            else member.api_url.rstrip("/")
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            resp = self.pool.request(method, base + path, body=data, headers=headers,
                                     timeout=urllib3.Timeout(connect=3.0,
                                                             read=timeout or self.timeout))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Unreachable(f"REST API of {member.name} at {base} did not answer: "
                              f"{str(reason).splitlines()[0]}") from None
        return Reply(resp.status, _decode(resp.data))

    def checked(self, member: Member, method: str, path: str, body: Any = None,
                ok: tuple[int, ...] = (200, 202), timeout: float | None = None) -> Reply:
        """call(), raising CtlError with the server's message on an unexpected status."""
        reply = self.call(member, method, path, body, timeout)
        if reply.status in ok:
            return reply
        if reply.status == 401:
            raise CtlError(f"{member.name}: {method} {path} refused (401): set ctl.authentication "
                           "or restapi.authentication in the config")
        raise CtlError(f"{member.name}: {method} {path} failed ({reply.status}): "
                       f"{reply.text or 'no message'}")
