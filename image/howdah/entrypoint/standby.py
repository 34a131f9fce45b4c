"""STANDBY_* variables -> ``bootstrap.dcs.standby_cluster``.  Pure: env in, config fragments out.

A standby cluster replays another cluster's WAL and promotes nobody until it is detached:

* from its primary by streaming: ``STANDBY_HOST``, ``STANDBY_PORT`` (5432),
  ``STANDBY_PRIMARY_SLOT_NAME``;
* from its archive only: ``STANDBY_WAL_S3_BUCKET`` (or ``STANDBY_WALE_S3_PREFIX`` /
  ``STANDBY_WALG_S3_PREFIX``, ``STANDBY_WAL_GS_BUCKET``, ...) with ``STANDBY_AWS_*`` credentials
  (endpoint, region and CA fall back to the unprefixed ``AWS_*``); the source's stanza and path
  are ``STANDBY_SCOPE`` (default: this cluster's ``SCOPE``).  The standby leader is restored from
  the source's newest backup (``bootstrap_standby_with_wale``, a pgBackRest restore from
  ``pgbackrest-standby.conf``) and replays the source's archive (``restore_command``);
* both: restore from the archive, stream from the host, and fall back to the archive whenever
  streaming breaks (PostgreSQL alternates between the two sources); ``basebackup`` from the
  host is the second way to create the standby leader.

``pgbackrest-standby.conf`` is self-contained and only read: nothing is ever written to the
source's repository.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import values
from .repo import Repo, repository
from .values import Env, get

if TYPE_CHECKING:
    from .settings import Settings

METHOD = "bootstrap_standby_with_wale"  # Spilo's name for the same thing


@dataclass(frozen=True)
class Standby:
    host: str = ""
    port: int = 5432
    slot: str = ""
    scope: str = ""  # the source cluster's stanza when replaying its archive
    repo: Repo | None = None  # the source's object storage

    def section(self) -> dict[str, Any]:
        """The standby_cluster keys that depend on the environment only (rendered by the template)."""
        result: dict[str, Any] = {}
        if self.host:
            result.update(host=self.host, port=self.port)
            if self.slot:
                result["primary_slot_name"] = self.slot
        return result


def from_env(env: Env, scope: str) -> Standby | None:
    host = get(env, "STANDBY_HOST")
    source_scope = get(env, "STANDBY_SCOPE", scope)
    values.cluster_name("STANDBY_SCOPE", source_scope, 63)
    repo = repository(env, source_scope, "STANDBY_")
    if not host and repo is None:
        return None
    return Standby(host=host, port=values.port(env, "STANDBY_PORT", 5432),
                   slot=get(env, "STANDBY_PRIMARY_SLOT_NAME"), scope=source_scope, repo=repo)


def config_file(s: Settings) -> str:
    return f"{s.run_dir}/pgbackrest-standby.conf"


def agent_fragment(s: Settings) -> dict[str, Any]:
    """The archive half of standby_cluster and the method that restores the standby leader."""
    st = s.standby_source
    if st is None or st.repo is None:
        return {}
    pgbackrest = f"pgbackrest --config={config_file(s)} --stanza={st.scope}"
    methods = [METHOD, "basebackup"] if st.host else [METHOD]
    return {
        "bootstrap": {"dcs": {"standby_cluster": {
            "restore_command": pgbackrest + ' archive-get %f "%p"',
            "create_replica_methods": methods,
        }}},
        # --type=preserve: pgBackRest writes no recovery settings of its own (they would land in
        # postgresql.auto.conf and outlive the standby cluster); the agent writes them
        "postgresql": {METHOD: {"command": pgbackrest + " --delta --type=preserve restore",
                                "keep_data": True, "no_params": True, "no_leader": True}},
    }
