"""CLONE_* variables -> a custom bootstrap method in the agent config.  Pure.

* ``CLONE_METHOD=CLONE_WITH_BASEBACKUP``: ``bootstrap.method: clone_with_basebackup``, whose
  command (``howdah-clone-basebackup``) runs pg_basebackup against CLONE_HOST:CLONE_PORT as
  CLONE_USER.  The password is not written anywhere: the script reads CLONE_PASSWORD from the
  environment the container gives the agent.
* ``CLONE_METHOD=CLONE_WITH_PGBACKREST`` (and ``CLONE_WITH_WALE``, the same thing here: WAL-E is
  not shipped, the image's archive is pgBackRest): restore the newest backup of stanza
  CLONE_SCOPE taken before CLONE_TARGET_TIME from the repository, then let PostgreSQL replay the
  archive up to CLONE_TARGET_TIME and promote (``recovery_conf``, written by the agent into
  postgresql.conf, so no recovery target is left behind in postgresql.auto.conf).
  ``CLONE_TARGET_INCLUSIVE`` (Spilo's, default true as PostgreSQL's): ``false`` stops just
  before the target time (``recovery_target_inclusive``).  ``CLONE_TARGET_TIMELINE``
  (``latest``, ``current`` or a number) is ``recovery_target_timeline``; with a number the
  restored backup is one taken on that timeline or an earlier one (``--target-timeline``), as
  a backup from a later timeline cannot recover onto it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import backup, values
from .repo import Repo, repository
from .errors import EnvError
from .values import Env, get

if TYPE_CHECKING:
    from .settings import Settings

BASEBACKUP_SCRIPT = "/usr/local/bin/howdah-clone-basebackup"
PGBACKREST_SCRIPT = "/usr/local/bin/howdah-clone-pgbackrest"
METHODS = {"CLONE_WITH_BASEBACKUP": "clone_with_basebackup",
           "CLONE_WITH_PGBACKREST": "clone_with_pgbackrest",
           "CLONE_WITH_WALE": "clone_with_wale"}


@dataclass(frozen=True)
class Clone:
    method: str  # a bootstrap method name, one of METHODS' values
    scope: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    target_time: str = ""
    target_timeline: str = "latest"
    target_inclusive: bool | None = None  # CLONE_TARGET_INCLUSIVE; None: not set (PostgreSQL's default, on)
    repo: Repo | None = None  # the source's object storage (CLONE_WAL_S3_BUCKET, ... or the cluster's own)

    @property
    def from_backup(self) -> bool:
        return self.method != "clone_with_basebackup"


def target_time(env: Env) -> str:
    """CLONE_TARGET_TIME as an ISO timestamp with its offset; a zone is required."""
    raw = get(env, "CLONE_TARGET_TIME")
    if not raw:
        return ""
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise EnvError("CLONE_TARGET_TIME", f"{raw!r} is not an ISO 8601 timestamp",
                       "write it like 2024-05-01 12:00:00+00:00") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise EnvError("CLONE_TARGET_TIME", f"{raw!r} has no time zone",
                       "add the offset, e.g. 2024-05-01 12:00:00+00:00")
    return parsed.isoformat(sep=" ")


def from_env(env: Env, scope: str, replication_user: str) -> Clone | None:
    raw = get(env, "CLONE_METHOD")
    if not raw:
        return None
    method = METHODS.get(raw.upper())
    if method is None:
        raise EnvError("CLONE_METHOD", f"{raw!r} is not a clone method", "use one of " + ", ".join(METHODS))
    timeline = get(env, "CLONE_TARGET_TIMELINE", "latest")
    if timeline not in ("latest", "current") and not timeline.isdigit():
        raise EnvError("CLONE_TARGET_TIMELINE", f"{timeline!r} is not a timeline", "use latest, current or a number")
    source_scope = get(env, "CLONE_SCOPE")
    source_repo = None
    if METHODS[raw.upper()] != "clone_with_basebackup" and source_scope:
        source_repo = repository(env, source_scope, "CLONE_") or repository(env, source_scope)
    clone = Clone(method=method, scope=source_scope, host=get(env, "CLONE_HOST"),
                  port=values.port(env, "CLONE_PORT", 5432), user=get(env, "CLONE_USER", replication_user),
                  target_time=target_time(env), target_timeline=timeline, repo=source_repo,
                  target_inclusive=values.boolean(env, "CLONE_TARGET_INCLUSIVE", True)
                  if get(env, "CLONE_TARGET_INCLUSIVE") else None)
    if not clone.from_backup and not clone.host:
        raise EnvError("CLONE_HOST", f"not set while CLONE_METHOD is {raw}", "set it to the host of the cluster to clone")
    if clone.from_backup and not clone.scope:
        raise EnvError("CLONE_SCOPE", f"not set while CLONE_METHOD is {raw}",
                       "set it to the name (stanza) of the cluster whose backups to restore")
    if clone.from_backup and clone.scope == scope:
        raise EnvError("CLONE_SCOPE", f"is this cluster's own SCOPE ({scope!r})",
                       "a clone needs a new SCOPE; CLONE_SCOPE names the source cluster")
    return clone


def agent_fragment(s: Settings) -> dict[str, Any]:
    """The bootstrap section that makes the first node clone instead of running initdb."""
    c = s.clone
    if c is None:
        return {}
    if not c.from_backup:
        command = f"{BASEBACKUP_SCRIPT} --host={c.host} --port={c.port} --user={c.user}"
        return {"bootstrap": {"method": c.method, c.method: {"command": command}}}
    command = f"{PGBACKREST_SCRIPT} --config={backup.config_file(s, 'clone')} --stanza={c.scope}"
    recovery: dict[str, Any] = {
        "restore_command": backup.restore_command(s, c.scope, "clone"),
        "recovery_target_action": "promote",
        "recovery_target_timeline": c.target_timeline,
    }
    if c.target_time:
        command += f" --target-time='{c.target_time}'"
        recovery["recovery_target_time"] = c.target_time
        if c.target_inclusive is not None:
            recovery["recovery_target_inclusive"] = c.target_inclusive
    if c.target_timeline.isdigit():
        command += f" --target-timeline={c.target_timeline}"
    return {"bootstrap": {"method": c.method, c.method: {"command": command, "recovery_conf": recovery}}}
