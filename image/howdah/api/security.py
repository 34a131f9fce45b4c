"""Who may change the cluster: Basic authentication and an IP allowlist.

Health checks and GET /patroni are always open, as load balancers and
peers poll them.  Every mutating request (POST, PUT, PATCH, DELETE) passes
:meth:`Guard.refusal` first and needs Basic authentication: with no
``restapi.authentication`` configured, mutating requests are refused
outright (403) instead of being open to anyone who reaches the port.  The
reads that expose the configuration (/config, /cluster, /history, /metrics)
need the credentials too when ``restapi.auth_reads`` is true.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence, Union
from urllib.parse import urlsplit

from howdah.config.load import auth_pair
from howdah.config.tls import unsafe_needs_client_cert

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REALM = "Howdah"


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def member_networks(api_urls: Sequence[str]) -> tuple[Network, ...]:
    """The addresses of the members' REST API hosts (names resolved, failures skipped)."""
    nets: list[Network] = []
    for url in api_urls:
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
            if not host:
                continue
            for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
                nets.append(ipaddress.ip_network(str(info[4][0]).split("%", 1)[0], strict=False))
        except (OSError, ValueError, UnicodeError):
            continue
    return tuple(nets)


NO_AUTH_CONFIGURED = ("unsafe requests are refused: restapi.authentication is not configured "
                      "(set PATRONI_RESTAPI_USERNAME and PATRONI_RESTAPI_PASSWORD)")


class Refusal(NamedTuple):
    code: int
    message: str
    headers: Mapping[str, str]


def parse_allowlist(raw: Any) -> tuple[Network, ...]:
    """``restapi.allowlist``: a list (or comma-separated string) of IPs and CIDRs."""
    if raw is None or raw == "":
        return ()
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    nets: list[Network] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"restapi.allowlist: {text!r} is not an IP address or network") from None
    return tuple(nets)


@dataclass(frozen=True)
class Guard:
    username: str | None = None
    password: str | None = None
    allowlist: tuple[Network, ...] = ()
    # restapi.allowlist_include_members: members' REST API hosts are allowed too
    include_members: bool = False
    # https with verify_client optional/required: unsafe requests need a client certificate
    client_cert_required: bool = False
    # restapi.auth_reads: /config, /cluster, /history and /metrics need the credentials too
    auth_reads: bool = False

    @classmethod
    def from_config(cls, restapi: Mapping[str, Any]) -> "Guard":
        """Raises ValueError (one line naming the field) on a half-configured authentication."""
        user, password = auth_pair(restapi)
        auth_reads = truthy(restapi.get("auth_reads"))
        if auth_reads and user is None:
            raise ValueError("restapi.auth_reads: needs restapi.authentication (username and password)")
        return cls(
            username=user,
            password=password,
            allowlist=parse_allowlist(restapi.get("allowlist")),
            include_members=truthy(restapi.get("allowlist_include_members")),
            client_cert_required=unsafe_needs_client_cert(restapi),
            auth_reads=auth_reads,
        )

    @property
    def needs_auth(self) -> bool:
        return self.username is not None

    def refusal(self, method: str, remote_ip: str, authorization: str | None,
                members: Sequence[Network] = (), client_cert: bool = False,
                sensitive: bool = False) -> Refusal | None:
        """None when the request may go on, else what to answer.

        ``members``: the networks of the members' REST API hosts, consulted
        when ``allowlist_include_members`` is on.  ``client_cert``: the request
        came with a verified TLS client certificate.  Checked in Patroni's
        order: allowlist (403), client certificate (403), credentials (401).
        ``sensitive``: a read that exposes the configuration (guarded when
        ``auth_reads`` is on).  With no credentials configured an unsafe
        request is refused (403) unless a verified client certificate was
        required and presented: that certificate is then the authentication.
        """
        if method.upper() not in MUTATING:
            if not (sensitive and self.auth_reads):
                return None
        else:
            allowed = self.allowlist + (tuple(members) if self.include_members else ())
            if (self.allowlist or self.include_members) and not self._allowed(remote_ip, allowed):
                return Refusal(403, "Access is denied", {})
            if self.client_cert_required and not client_cert:
                return Refusal(403, "client certificate required", {})
            if not self.needs_auth:
                if self.client_cert_required and client_cert:
                    return None
                return Refusal(403, NO_AUTH_CONFIGURED, {})
        challenge = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
        if not authorization:
            return Refusal(401, "no auth header received", challenge)
        if not self._credentials_ok(authorization):
            return Refusal(401, "not authenticated", challenge)
        return None

    @staticmethod
    def _allowed(remote_ip: str, allowed: Sequence[Network]) -> bool:
        try:
            ip = ipaddress.ip_address(remote_ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in allowed)

    def _credentials_ok(self, header: str) -> bool:
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        return (hmac.compare_digest(user.encode(), (self.username or "").encode())
                and hmac.compare_digest(password.encode(), (self.password or "").encode()))
