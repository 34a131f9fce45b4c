"""What the HTTP front and the Tornado adapter share, without importing Tornado."""
from __future__ import annotations

MAX_BODY_BYTES = 1024 * 1024


class BadRequest(Exception):
    """The request cannot be served; answer ``code`` and close the connection."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
