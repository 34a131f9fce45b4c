"""Answers for GET /patroni and the health paths, shared by both HTTP fronts.

The fast front (:mod:`howdah.api.front`) and the Tornado handlers
(:mod:`howdah.api.app`) both call :meth:`StatusResponder.reply`, so the two
can never disagree.  A reply is a status code and a body of pre-serialised
bytes taken from the snapshot's cache; nothing here encodes JSON per request
except error messages.
"""

from __future__ import annotations

import json
import logging
import time
from functools import lru_cache
from typing import Callable, NamedTuple
from urllib.parse import parse_qs

from howdah.api.health import CHECKS, NO_QUERY, CheckQuery, QueryError, parse_query, status_code
from howdah.api.liveness import ProcessWatch
from howdah.core.status import NodeStatus

log = logging.getLogger(__name__)

PATRONI_PATH = "/patroni"
STATUS_PATHS = frozenset(CHECKS) | {PATRONI_PATH}

# At most one log line per this many seconds when get_status() keeps failing.
_ERROR_LOG_INTERVAL = 10.0


class Reply(NamedTuple):
    code: int
    body: bytes  # the GET body; HEAD and OPTIONS send none


@lru_cache(maxsize=512)
def parse_query_string(query: str) -> CheckQuery:
    """Parse a raw query string; cached, since probes repeat the same few."""
    return parse_query(parse_qs(query, keep_blank_values=True))


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode("utf-8")


class StatusResponder:
    """Turns (path, query string) into a :class:`Reply` for the current snapshot."""

    def __init__(self, get_status: Callable[[], NodeStatus], clock: Callable[[], float]) -> None:
        self._get_status = get_status
        self._clock = clock
        self._last_error_log = -_ERROR_LOG_INTERVAL
        self._postmaster = ProcessWatch()

    @staticmethod
    def handles(path: str) -> bool:
        return path in STATUS_PATHS

    def reply(self, path: str, query: str = "") -> Reply:
        """Answer GET ``path``; ``query`` is the raw query string (may be empty).

        Never raises: a failure to read or judge the snapshot answers 503
        (a node that cannot tell its own health is not healthy) and is logged.
        """
        try:
            return self._reply(path, query)
        except QueryError as e:
            return Reply(400, error_body(str(e)))
        except Exception as e:  # noqa: BLE001 - a health check must answer
            self._log_failure(path, e)
            return Reply(503, error_body(f"cannot evaluate {path}: {type(e).__name__}"))

    def _reply(self, path: str, query: str) -> Reply:
        is_check = path != PATRONI_PATH
        q = parse_query_string(query) if query and is_check else NO_QUERY
        s = self._get_status()
        if s.pg_running and s.postmaster_pid and not self._postmaster.alive(s.postmaster_pid):
            s = s.postmaster_gone  # killed since the snapshot: never answer from it
        now = self._clock()
        body = s.patroni_json_bytes(now)
        return Reply(status_code(path, s, now, q) if is_check else 200, body)

    def _log_failure(self, path: str, exc: Exception) -> None:
        t = time.monotonic()
        if t - self._last_error_log >= _ERROR_LOG_INTERVAL:
            self._last_error_log = t
            log.error("REST API: %s failed", path, exc_info=exc)
