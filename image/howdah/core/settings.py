"""Settings for one HA cycle: the local config merged with the DCS config.

Pure: built from plain dicts, validated with the timing rule, immutable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from howdah.core.models import truthy

GUC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def valid_name(name: Any) -> bool:
    """A plain GUC identifier: letters, digits, _ and . (never =, quotes or newlines)."""
    return isinstance(name, str) and len(name) <= 200 and GUC_NAME.match(name) is not None

DEFAULTS: Mapping[str, Any] = {
    "ttl": 30,
    "loop_wait": 10,
    "retry_timeout": 10,
    "maximum_lag_on_failover": 1048576,
    "maximum_lag_on_syncnode": -1,
    "primary_start_timeout": 300,
    "primary_stop_timeout": 0,
    "synchronous_mode": False,
    "synchronous_mode_strict": False,
    "synchronous_node_count": 1,
    "failsafe_mode": False,
    "check_timeline": False,
    "pause": False,
}


class SettingsError(ValueError):
    """A dynamic setting has a bad value; the message names it and the fix."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Settings:
    ttl: int = 30
    loop_wait: int = 10
    retry_timeout: int = 10
    maximum_lag_on_failover: int = 1048576
    primary_start_timeout: int = 300
    use_pg_rewind: bool = False
    use_slots: bool = True
    remove_data_directory_on_rewind_failure: bool = False
    pause: bool = False
    standby_cluster: Mapping[str, Any] | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    pg_hba: tuple[str, ...] = ()
    replica_without_leader: bool = False  # some create_replica_method has no_master
    synchronous_mode: bool = False
    synchronous_mode_strict: bool = False
    synchronous_node_count: int = 1
    # replication slots (core/slots.py parses them; a bad entry is skipped and logged)
    permanent_slots: Mapping[str, Any] = field(default_factory=dict)
    ignore_slots: tuple[Any, ...] = ()
    member_slots_ttl: int = 1800
    failsafe_mode: bool = False
    # what was adjusted (the timing rule), for the agent to log as a WARNING
    notes: tuple[str, ...] = field(default=(), compare=False)
    maximum_lag_on_syncnode: int = -1  # > 0: a standby lagging more is not synchronous
    synchronous_quorum: bool = False  # synchronous_mode: quorum (ANY k, votes to promote)
    # a replica behind the cluster's timeline (from /history) does not take the lock
    check_timeline: bool = False
    # synchronous mode: a primary's stop taking longer is aborted (immediate, then SIGKILL)
    primary_stop_timeout: int = 0
    # a node whose data left the leader's timeline (and that may not rewind) clones again
    remove_data_directory_on_diverged_timelines: bool = False

    @property
    def stop_timeout(self) -> float | None:
        """Seconds a stop of the primary may take before it is aborted, as
        Patroni: primary_stop_timeout, only when > 0 and in synchronous mode."""
        if self.primary_stop_timeout > 0 and self.synchronous_mode:
            return float(self.primary_stop_timeout)
        return None

    @property
    def demote_after(self) -> float:
        """Seconds after a renewal was sent by which the next must succeed.

        The renewal is due after loop_wait and may be retried for
        retry_timeout; past that the leader demotes.  The timing rule keeps
        at least another retry_timeout before the lease runs out.
        """
        return float(self.loop_wait + self.retry_timeout)

    @property
    def lease_margin(self) -> float:
        """Safety margin taken off ttl when judging our own lease."""
        return float(self.retry_timeout)


def _int(merged: Mapping[str, Any], key: str, minimum: int,
         notes: list[str] | None = None) -> int:
    """An integer setting; below `minimum` it is an error, or, given `notes`
    (the timing settings), raised to the minimum with a note, as Patroni does."""
    value = merged.get(key, DEFAULTS.get(key))
    if isinstance(value, bool):
        raise SettingsError(key, f"must be an integer, got {value!r}")
    try:
        number = int(value)  # accepts "30" as Patroni does
    except (TypeError, ValueError):
        raise SettingsError(key, f"must be an integer, got {value!r}") from None
    if number < minimum and notes is not None:
        notes.append(f"{key}={number} is below its minimum: using {key}={minimum}")
        return minimum
    if number < minimum:
        raise SettingsError(key, f"must be >= {minimum}, got {number}")
    return number


def adjust_timing(ttl: int, loop_wait: int, retry_timeout: int) -> tuple[int, int, str | None]:
    """(loop_wait, retry_timeout) that keep loop_wait + 2 * retry_timeout <= ttl.

    Patroni's rule: loop_wait is lowered first; once it is at its minimum (1),
    retry_timeout is lowered to (ttl - 1) // 2.  The stored values are kept;
    the note says which ones are used."""
    if loop_wait + 2 * retry_timeout <= ttl:
        return loop_wait, retry_timeout, None
    if 1 + 2 * retry_timeout > ttl:
        new_loop, new_retry = 1, (ttl - 1) // 2
    else:
        new_loop, new_retry = ttl - 2 * retry_timeout, retry_timeout
    return new_loop, new_retry, (
        f"ttl={ttl}, loop_wait={loop_wait}, retry_timeout={retry_timeout} break the rule "
        f"loop_wait + 2*retry_timeout <= ttl: using loop_wait={new_loop}, "
        f"retry_timeout={new_retry} (raise ttl to {loop_wait + 2 * retry_timeout} to keep "
        "them)")


def check_parameters(value: Any, field_name: str = "postgresql.parameters") -> Mapping[str, Any]:
    """A parameters map whose every name is a plain GUC identifier."""
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(field_name, f"must be a mapping of name: value, got "
                            f"{type(value).__name__}")
    for name in value:
        if not valid_name(name):
            raise SettingsError(field_name, f"{name!r} is not a parameter name: use letters, "
                                "digits, _ and . (starting with a letter or _)")
    return value


# what must be the same on every member: the local config cannot set them (as in Patroni)
DCS_ONLY_PARAMETERS = frozenset((
    "max_connections", "max_locks_per_transaction", "max_worker_processes",
    "max_prepared_transactions", "wal_level", "track_commit_timestamp", "max_wal_senders",
    "max_replication_slots", "wal_keep_segments", "wal_keep_size", "wal_log_hints",
    "hot_standby"))


def build_settings(dynamic: Mapping[str, Any], local_pg: Mapping[str, Any]) -> Settings:
    """Merge the DCS config with the local `postgresql` section.

    Local `postgresql.parameters` win over the DCS ones, as in Patroni, except
    DCS_ONLY_PARAMETERS (the DCS's or the defaults count).
    """
    notes: list[str] = []
    ttl = _int(dynamic, "ttl", 3, notes)
    loop_wait = _int(dynamic, "loop_wait", 1, notes)
    retry_timeout = _int(dynamic, "retry_timeout", 1, notes)
    loop_wait, retry_timeout, note = adjust_timing(ttl, loop_wait, retry_timeout)
    notes += [note] if note else []
    dyn_pg = dynamic.get("postgresql") or {}
    if not isinstance(dyn_pg, Mapping):
        raise SettingsError("postgresql", "must be a mapping")
    params: dict[str, Any] = dict(check_parameters(dyn_pg.get("parameters")))
    for name, value in check_parameters(local_pg.get("parameters")).items():
        if name.lower() in DCS_ONLY_PARAMETERS:
            notes.append(f"postgresql.parameters.{name} is ignored in the local config: "
                         "set it in the DCS config (patronictl edit-config), as in Patroni")
        else:
            params[name] = value
    hba = local_pg.get("pg_hba") or dyn_pg.get("pg_hba") or ()

    def flag(key: str, default: bool) -> bool:
        if key in local_pg:
            return truthy(local_pg[key])
        return truthy(dyn_pg.get(key, default))

    standby = dynamic.get("standby_cluster")
    slots = _mapping(dynamic, "slots")
    if flag("use_slots", True) and _has_logical(slots):
        # a replica's copy of a logical slot stays usable only while the primary
        # keeps the catalog rows it needs: the replica's feedback tells it so
        params["hot_standby_feedback"] = "on"
    return Settings(
        ttl=ttl,
        loop_wait=loop_wait,
        retry_timeout=retry_timeout,
        maximum_lag_on_failover=_int(dynamic, "maximum_lag_on_failover", 0),
        primary_start_timeout=_int(dynamic, "primary_start_timeout", 0),
        use_pg_rewind=flag("use_pg_rewind", False),
        use_slots=flag("use_slots", True),
        remove_data_directory_on_rewind_failure=truthy(
            local_pg.get("remove_data_directory_on_rewind_failure", False)
        ),
        pause=truthy(dynamic.get("pause", False)),
        standby_cluster=standby if isinstance(standby, Mapping) and standby else None,
        parameters=params,
        pg_hba=tuple(str(x) for x in hba),
        replica_without_leader=_leaderless_methods(local_pg, standby),
        synchronous_mode=_sync_mode(dynamic) != "off",
        synchronous_quorum=_sync_mode(dynamic) == "quorum",
        maximum_lag_on_syncnode=_int(dynamic, "maximum_lag_on_syncnode", -1),
        synchronous_mode_strict=truthy(dynamic.get("synchronous_mode_strict", False)),
        synchronous_node_count=_int(dynamic, "synchronous_node_count", 1),
        permanent_slots=slots,
        ignore_slots=tuple(_list(dynamic, "ignore_slots")),
        member_slots_ttl=_duration(dynamic, "member_slots_ttl", 1800),
        failsafe_mode=truthy(dynamic.get("failsafe_mode", False)),
        check_timeline=truthy(dynamic.get("check_timeline", False)),
        primary_stop_timeout=_stop_timeout(dynamic),
        remove_data_directory_on_diverged_timelines=flag(
            "remove_data_directory_on_diverged_timelines", False),
        notes=tuple(notes),
    )


def _stop_timeout(dynamic: Mapping[str, Any]) -> int:
    """primary_stop_timeout (or the old name master_stop_timeout), >= 0."""
    key = "primary_stop_timeout" if "primary_stop_timeout" in dynamic or \
        "master_stop_timeout" not in dynamic else "master_stop_timeout"
    return _int(dynamic, key, 0) if dynamic.get(key) is not None else 0


def _has_logical(slots: Mapping[str, Any]) -> bool:
    from howdah.core.slots import has_logical, parse_permanent
    return has_logical(parse_permanent(slots)[0])


def _mapping(dynamic: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = dynamic.get(key)
    if value in (None, "", {}):
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(key, f"must be a mapping, got {value!r}")
    return dict(value)


def _list(dynamic: Mapping[str, Any], key: str) -> list[Any]:
    value = dynamic.get(key)
    if value in (None, "", []):
        return []
    if not isinstance(value, list):
        raise SettingsError(key, f"must be a list, got {value!r}")
    return value


def _duration(dynamic: Mapping[str, Any], key: str, default: int) -> int:
    from howdah.core.slots import parse_duration
    value = dynamic.get(key, default)
    try:
        return parse_duration(default if value is None else value, key)
    except ValueError as exc:
        raise SettingsError(key, str(exc).split(": ", 1)[1]) from None


def _leaderless_methods(local_pg: Mapping[str, Any], standby: Any) -> bool:
    std = standby if isinstance(standby, Mapping) else {}
    names = std.get("create_replica_methods") or local_pg.get("create_replica_methods") or []
    for name in names if isinstance(names, list) else [names]:
        spec = local_pg.get(str(name))
        if isinstance(spec, Mapping) and (truthy(spec.get("no_master")) or
                                          truthy(spec.get("no_leader"))):
            return True
    return False


def _sync_mode(dynamic: Mapping[str, Any]) -> str:
    """synchronous_mode: true/false (or on/off...) or "quorum", as Patroni 4 reads it."""
    value = dynamic.get("synchronous_mode", False)
    if isinstance(value, str) and value.strip().lower() == "quorum":
        return "quorum"
    return "on" if truthy(value) else "off"
