"""Spilo variables Howdah does not implement: each one that is set gets one warning line at start
saying what to do instead, so a Spilo configuration never loses a setting silently.

configs/README.md ("Spilo's variables") lists every Spilo variable with Howdah's status; a unit
test keeps that table and this module in step.
"""
from __future__ import annotations

import re

from .values import Env

_LOG_SHIPPING = "log shipping to S3 is not in the image: collect $PGDATA/../pg_log (or LOG_TO_STDOUT=true and docker logs) with your log agent"
_SWIFT = "Swift is not a pgBackRest repository type: use an S3-compatible endpoint (WAL_S3_BUCKET, AWS_ENDPOINT)"
_SSH = "WAL-G over SSH is not in the image: use an S3-compatible repository (WAL_S3_BUCKET) or PGBACKREST=true with a shared volume"

UNSUPPORTED: dict[str, str] = {
    "HUMAN_ROLE": "PAM/OAuth2 logins are not in the image: create roles with passwords (or certificates) in post_bootstrap",
    "PAM_OAUTH2": "PAM/OAuth2 logins are not in the image: use scram-sha-256 roles or client certificates",
    "BGMON_LISTEN_IP": "bg_mon is not in the image: use the REST API's /metrics and pg_stat_* views",
    "SPILO_PROVIDER": "Howdah does not probe cloud metadata at start: set the callbacks (EIP_ALLOCATION, CALLBACK_SCRIPT) yourself",
    "DEVELOP": "there is no develop mode: without a DCS the image starts a local etcd",
    "RW_DIR": "the run directory is HOWDAH_RUN_DIR (/run/howdah)",
    "WALE_ENV_DIR": "there are no envdir files: pgBackRest reads the rendered $HOWDAH_RUN_DIR/pgbackrest.conf",
    "WALE_TMPDIR": "pgBackRest needs no temporary directory",
    "ENABLE_WAL_PATH_COMPAT": "the pgBackRest repository path is per scope (repo1-path); there is no WAL-E path to keep compatible",
    "USE_OLD_LOCALES": "the image has Debian's current locales only",
    "LOG_S3_BUCKET": _LOG_SHIPPING, "LOG_S3_TAGS": _LOG_SHIPPING, "LOG_SHIP_HOURLY": _LOG_SHIPPING,
    "LOG_SHIP_SCHEDULE": _LOG_SHIPPING, "LOG_ENV_DIR": _LOG_SHIPPING, "LOG_TMPDIR": _LOG_SHIPPING,
    "LOG_S3_ENDPOINT": _LOG_SHIPPING, "LOG_BUCKET_SCOPE_PREFIX": _LOG_SHIPPING,
    "LOG_BUCKET_SCOPE_SUFFIX": _LOG_SHIPPING, "LOG_GROUP_BY_DATE": _LOG_SHIPPING,
    "WAL_SWIFT_BUCKET": _SWIFT, "WALE_SWIFT_PREFIX": _SWIFT,
    "SSH_USERNAME": _SSH, "SSH_PORT": _SSH, "SSH_PRIVATE_KEY_PATH": _SSH, "WALG_SSH_PREFIX": _SSH,
}
_SWIFT_VARIABLE = re.compile(r"^SWIFT_[A-Z_]+$")


def notices(env: Env) -> list[str]:
    """One warning line per unsupported Spilo variable that is set (to a non-empty value)."""
    lines = []
    for name in sorted(env):
        if not str(env.get(name) or "").strip():
            continue
        why = UNSUPPORTED.get(name) or (_SWIFT if _SWIFT_VARIABLE.match(name) else None)
        if why:
            lines.append(f"howdah-entrypoint: warning: {name} is a Spilo setting Howdah does not support and ignores: {why}")
    return lines
