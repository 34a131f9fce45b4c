"""A tiny HTTP client for agent REST APIs and etcd's v2 API (stdlib only)."""
from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

NO_RESPONSE = 0  # status code reported when nothing answered (refused, timeout)


def basic_auth(username: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP Basic authentication."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def request(url: str, method: str = "GET", body: Any = None,
            timeout: float = 3.0, headers: dict[str, str] | None = None,
            context: ssl.SSLContext | None = None,
            auth: tuple[str, str] | None = None) -> tuple[int, Any]:
    """(status, decoded body) of one request; (0, None) when nothing answered
    (refused, timeout, or a TLS handshake that failed).

    context: the TLS context of an https URL (CA, client certificate).
    The body is decoded as JSON when possible, else returned as text; a body
    given as dict/list is sent as JSON, a str as form data (etcd v2 style).
    ``auth``: (username, password) sent as Basic authentication.
    """
    data: bytes | None = None
    hdrs = dict(headers or {})
    if auth is not None:
        hdrs.update(basic_auth(*auth))
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, _decode(resp.read())
    except urllib.error.HTTPError as err:
        try:
            payload = err.read()
        except (OSError, http.client.HTTPException):
            payload = b""
        return err.code, _decode(payload)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return NO_RESPONSE, None


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
