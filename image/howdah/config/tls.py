"""REST API TLS, both ends, from the agent's YAML (Patroni 4's keys and rules).

Server (``restapi``): ``certfile`` turns https on; ``keyfile``, ``keyfile_password``,
``ciphers``; ``cafile`` is what client certificates are checked against;
``verify_client``:

* ``none`` (default): no client certificate is asked for;
* ``optional``: a client certificate is checked when sent, and every unsafe
  request (POST, PUT, PATCH, DELETE) without one is answered 403
  ``client certificate required``; safe ones (health checks) need none;
* ``required``: the TLS handshake itself fails without a valid certificate.

Client (members calling members, and howdahctl): the ``ctl`` section.  A member
calls its peers as Patroni 4.1.5 does (patroni.request with ``insecure=True``):
it presents ``ctl.certfile``/``ctl.keyfile`` (``ctl.keyfile_password``) when
``ctl.certfile`` is set, and then checks the peer's certificate chain against
``ctl.cacert``, else ``restapi.cafile``, without a host name check (peers are
reached at their connect_address, often an IP the certificate does not name).
Without ``ctl.certfile`` Patroni checks nothing; Howdah still checks the chain when
``ctl.cacert`` is given, unless ``ctl.insecure`` is true.

howdahctl is patronictl: it checks the server's chain and host name against
``ctl.cacert``, else ``restapi.cafile`` (else the system CAs); ``ctl.insecure: true``
turns the check off (with ``ctl.certfile`` set: only the host name check, as in
patronictl).
"""
from __future__ import annotations

import logging
import os
import ssl
from typing import Any, Mapping, Optional

log = logging.getLogger(__name__)

VERIFY_CLIENT = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                 "required": ssl.CERT_REQUIRED}
RESTAPI_TLS_KEYS = ("certfile", "keyfile", "keyfile_password", "cafile", "ciphers")
CTL_TLS_KEYS = ("cacert", "certfile", "keyfile", "keyfile_password")


class TlsConfigError(ValueError):
    """One line naming the field and the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def _opt(section: Mapping[str, Any], key: str) -> Optional[str]:
    value = section.get(key)
    return str(value) if value not in (None, "") else None


def verify_client(restapi: Mapping[str, Any]) -> str:
    """``restapi.verify_client`` normalised to none/optional/required."""
    raw = restapi.get("verify_client")
    if raw in (None, ""):
        return "none"
    value = str(raw).strip().lower()
    if value not in VERIFY_CLIENT:
        raise TlsConfigError("restapi.verify_client",
                             f"{raw!r} is not one of none, optional, required")
    return value


def check_config(restapi: Mapping[str, Any], ctl: Mapping[str, Any]) -> None:
    """Shape checks that need no files (config load and --validate-config)."""
    for section, name, keys in ((restapi, "restapi", RESTAPI_TLS_KEYS), (ctl, "ctl", CTL_TLS_KEYS)):
        for key in keys:
            value = section.get(key)
            if value is not None and not isinstance(value, (str, int)):
                raise TlsConfigError(f"{name}.{key}", f"must be a string (a path), not "
                                     f"{type(value).__name__}")
    mode = verify_client(restapi)
    if mode != "none" and not _opt(restapi, "certfile"):
        raise TlsConfigError("restapi.verify_client",
                             f"{mode} needs https: set restapi.certfile and restapi.keyfile")
    if mode != "none" and not _opt(restapi, "cafile"):
        raise TlsConfigError("restapi.cafile", f"verify_client is {mode}: set restapi.cafile "
                             "to the CA that signs the client certificates")
    for name, section in (("restapi", restapi), ("ctl", ctl)):
        if _opt(section, "keyfile") and not _opt(section, "certfile"):
            raise TlsConfigError(f"{name}.certfile", f"{name}.keyfile is set: set {name}.certfile too")


def _load_chain(ctx: ssl.SSLContext, section: str, cfg: Mapping[str, Any]) -> None:
    cert, key, password = _opt(cfg, "certfile"), _opt(cfg, "keyfile"), _opt(cfg, "keyfile_password")
    try:
        ctx.load_cert_chain(cert or "", key, password=password or "")  # never a tty prompt
    except FileNotFoundError as exc:
        field = "keyfile" if key and exc.filename == key else "certfile"
        raise TlsConfigError(f"{section}.{field}", f"no such file {exc.filename or cert}") from None
    except PermissionError as exc:
        raise TlsConfigError(f"{section}.certfile", f"cannot read {exc.filename or cert}: "
                             "permission denied (the agent's user must read the certificate "
                             "and key)") from None
    except ssl.SSLError as exc:
        field = f"{section}.keyfile" if key else f"{section}.certfile"
        reason = getattr(exc, "reason", None) or "not a PEM certificate and key"
        if password:
            raise TlsConfigError(field, f"cannot load {key or cert}: wrong {section}."
                                 "keyfile_password, or the key does not match the certificate"
                                 ) from None
        raise TlsConfigError(field, f"cannot load {cert} with key {key or cert} ({reason}): give "
                             f"a PEM certificate and its key; an encrypted key needs {section}."
                             "keyfile_password") from None
    except OSError as exc:
        raise TlsConfigError(f"{section}.certfile", f"cannot read {cert}: {exc.strerror}") from None


def _load_ca(ctx: ssl.SSLContext, field: str, cafile: str) -> None:
    try:
        ctx.load_verify_locations(cafile)
    except FileNotFoundError:
        raise TlsConfigError(field, f"no such file {cafile}") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(field, f"cannot load CA certificates from {cafile}: "
                             f"{getattr(exc, 'reason', None) or exc}") from None


def server_context(restapi: Mapping[str, Any]) -> Optional[ssl.SSLContext]:
    """The REST API's TLS context, or None for plain http (no restapi.certfile)."""
    if not _opt(restapi, "certfile"):
        return None
    check_config(restapi, {})
    mode = verify_client(restapi)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ciphers = _opt(restapi, "ciphers")
    if ciphers:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError:
            raise TlsConfigError("restapi.ciphers", f"{ciphers!r} selects no cipher OpenSSL "
                                 "knows (an OpenSSL cipher list, e.g. ECDHE+AESGCM)") from None
    _load_chain(ctx, "restapi", restapi)
    cafile = _opt(restapi, "cafile")
    if cafile:
        _load_ca(ctx, "restapi.cafile", cafile)
    ctx.verify_mode = VERIFY_CLIENT[mode]
    return ctx


def unsafe_needs_client_cert(restapi: Mapping[str, Any]) -> bool:
    """Whether POST/PUT/PATCH/DELETE must come with a verified client certificate."""
    try:
        return bool(_opt(restapi, "certfile")) and verify_client(restapi) != "none"
    except TlsConfigError:
        return True  # refuse rather than open up; the agent refuses to start anyway


def member_client_context(restapi: Mapping[str, Any],
                          ctl: Mapping[str, Any]) -> Optional[ssl.SSLContext]:
    """The context a member calls its peers' https APIs with (see the module doc);
    None: nothing is checked and no certificate is presented."""
    certfile, cacert = _opt(ctl, "certfile"), _opt(ctl, "cacert")
    if not certfile and (not cacert or truthy(ctl.get("insecure"))):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if certfile:
        _load_chain(ctx, "ctl", ctl)
    ca = cacert or _opt(restapi, "cafile")
    if ca:
        _load_ca(ctx, "ctl.cacert" if cacert else "restapi.cafile", ca)
    else:
        ctx.load_default_certs()
    return ctx


class CertReloader:
    """Reloads ``restapi.certfile/keyfile/cafile`` into the live server context when one of the
    files changes (a rotated certificate, Spilo's SSL_RESTAPI_* files): new connections get the
    new certificate, open ones keep theirs, nothing restarts.  Files that cannot be loaded are
    reported once and the previous certificate stays in use."""

    def __init__(self, ctx: ssl.SSLContext, restapi: Mapping[str, Any]) -> None:
        self.ctx, self.restapi = ctx, dict(restapi)
        self.paths = [p for p in (_opt(restapi, k) for k in ("certfile", "keyfile", "cafile")) if p]
        self.stamps = self._stamps()

    def _stamps(self) -> list[Optional[tuple[int, int]]]:
        result: list[Optional[tuple[int, int]]] = []
        for path in self.paths:
            try:
                st = os.stat(path)
                result.append((st.st_mtime_ns, st.st_size))
            except OSError:
                result.append(None)
        return result

    def check(self) -> bool:
        """True when the files changed and were loaded."""
        stamps = self._stamps()
        if stamps == self.stamps:
            return False
        self.stamps = stamps
        try:
            _load_chain(self.ctx, "restapi", self.restapi)
            cafile = _opt(self.restapi, "cafile")
            if cafile:
                _load_ca(self.ctx, "restapi.cafile", cafile)
        except TlsConfigError as exc:
            log.warning("REST API certificate files changed but cannot be loaded (%s): "
                        "serving the previous certificate", exc)
            return False
        log.info("REST API certificate files changed: reloaded (%s)", ", ".join(self.paths))
        return True
