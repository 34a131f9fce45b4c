"""pgBackRest in the agent config: restore_command, replica methods from the repository, the
backup keeper program.  Pure: environment in, config fragments out.

With archiving on (WAL_S3_BUCKET or PGBACKREST=true) the rendered config gets

* ``postgresql.recovery_conf.restore_command``: ``pgbackrest ... archive-get %f "%p"``, so
  replicas and standby leaders can fetch WAL the primary archived;
* ``postgresql.create_replica_methods``: ``[pgbackrest, basebackup]`` (``REPLICA_METHODS``
  overrides it), where ``pgbackrest`` is a plain ``--delta restore`` (keep_data, no_params) and
  ``wal_e`` (also defined) restores only when the newest backup is close enough to the leader,
  else declines so the next method (basebackup) takes over;
* a supervisord program, ``howdah-backup-keeper``, that creates the stanza, takes the first
  full backup whenever this node is a primary whose stanza has none, then a ``BACKUP_TYPE``
  backup (full) at every ``BACKUP_SCHEDULE`` time (cron, UTC; Spilo's default ``00 01 * * *``),
  applies ``BACKUP_NUM_TO_RETAIN`` (and ``BACKUP_RETAIN_DAYS``) after each one and retries a
  failed one every ``BACKUP_RETRY_INTERVAL`` seconds, recording outcomes in backup-status.json;
* ``archive_health`` (Howdah's section, read by the agent's archive-health thread for /metrics):
  sampled every ``ARCHIVE_CHECK_INTERVAL`` seconds (15), a WARNING after ``ARCHIVE_WARNING_AFTER``
  seconds (300) of failing archive_command, the repository read every
  ``REPOSITORY_CHECK_INTERVAL`` seconds (300).  ``PGBACKREST_ARCHIVE_PUSH_QUEUE_MAX`` is refused:
  it makes pgBackRest drop WAL it cannot push.

The repository is ``PGBACKREST_REPO_PATH`` (default ``$HOME/pgdata/pgbackrest``, inside the
node's own volume; point every node at one shared volume to restore replicas from it) or S3
(``WAL_S3_BUCKET`` and the ``AWS_*`` variables, rendered in pgbackrest.conf).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import values
from .errors import EnvError
from .values import Env, get

if TYPE_CHECKING:
    from .settings import Settings

KEEPER = "/usr/local/bin/howdah-backup-keeper"
RESTORE = "/usr/local/bin/howdah-restore-replica"
KNOWN_METHODS = ("pgbackrest", "wal_e", "basebackup")


@dataclass(frozen=True)
class Backup:
    repo_path: str = ""
    methods: tuple[str, ...] = ("pgbackrest", "basebackup")
    threshold_megabytes: int = 10240
    threshold_percentage: int = 30
    keeper_interval: int = 30
    retain_full: int = 5  # BACKUP_NUM_TO_RETAIN: full backups kept (their diffs/incrs and WAL go with them)
    schedule: str = "00 01 * * *"  # BACKUP_SCHEDULE (cron, UTC), Spilo's default: daily at 01:00
    kind: str = "full"  # BACKUP_TYPE: full, diff or incr
    retain_days: int = 0  # BACKUP_RETAIN_DAYS: also expire full backups older than this (0: off)
    retry_interval: int = 300  # BACKUP_RETRY_INTERVAL: seconds between retries of a failed backup
    archive_check_interval: int = 15  # ARCHIVE_CHECK_INTERVAL: seconds between archive-health samples
    archive_warning_after: int = 300  # ARCHIVE_WARNING_AFTER: failing this long -> a WARNING in the log
    repository_check_interval: int = 300  # REPOSITORY_CHECK_INTERVAL: seconds between repository reads


_CRON_CHARS = set("0123456789*,-/")
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def schedule(env: Env) -> str:
    """BACKUP_SCHEDULE: five cron fields (numbers, *, lists, ranges, steps); empty or off:
    only the first backup.  The keeper parses it fully; this catches what would stop it."""
    raw = get(env, "BACKUP_SCHEDULE", "00 01 * * *")
    if raw.lower() in ("off", "none", "false"):
        return ""
    fields = raw.split()
    fix = "write five cron fields (minute hour day-of-month month day-of-week, UTC), e.g. '00 01 * * *'"
    if len(fields) != 5:
        raise EnvError("BACKUP_SCHEDULE", f"{raw!r} has {len(fields)} fields, not 5", fix)
    for text, (low, high) in zip(fields, _CRON_RANGES):
        if not set(text) <= _CRON_CHARS:
            raise EnvError("BACKUP_SCHEDULE", f"{text!r} in {raw!r} is not a cron field (names are not supported)", fix)
        numbers = [int(n) for n in text.replace("*", " ").replace(",", " ").replace("-", " ").split("/")[0].split()
                   if n.isdigit()]
        if any(n < low or n > high for n in numbers):
            raise EnvError("BACKUP_SCHEDULE", f"{text!r} in {raw!r} is outside {low}-{high}", fix)
    return " ".join(fields)


def from_env(env: Env, home: str) -> Backup:
    refuse_wal_dropping(env)
    raw = get(env, "REPLICA_METHODS", "pgbackrest,basebackup")
    methods = tuple(m.strip() for m in raw.split(",") if m.strip())
    for method in methods:
        if method not in KNOWN_METHODS:
            raise EnvError("REPLICA_METHODS", f"{method!r} is not a replica method of the image",
                                  "list some of " + ", ".join(KNOWN_METHODS) + ", comma-separated")
    return Backup(
        repo_path=get(env, "PGBACKREST_REPO_PATH", f"{home}/pgdata/pgbackrest"),
        methods=methods,
        threshold_megabytes=values.integer(env, "WALE_BACKUP_THRESHOLD_MEGABYTES", 10240),
        threshold_percentage=values.integer(env, "WALE_BACKUP_THRESHOLD_PERCENTAGE", 30),
        keeper_interval=values.integer(env, "BACKUP_CHECK_INTERVAL", 30, minimum=1),
        retain_full=values.integer(env, "BACKUP_NUM_TO_RETAIN", 5, minimum=1),
        schedule=schedule(env),
        kind=_kind(env),
        retain_days=values.integer(env, "BACKUP_RETAIN_DAYS", 0),
        retry_interval=values.integer(env, "BACKUP_RETRY_INTERVAL", 300, minimum=1),
        archive_check_interval=values.integer(env, "ARCHIVE_CHECK_INTERVAL", 15, minimum=1),
        archive_warning_after=values.integer(env, "ARCHIVE_WARNING_AFTER", 300, minimum=1),
        repository_check_interval=values.integer(env, "REPOSITORY_CHECK_INTERVAL", 300, minimum=1),
    )


# pgBackRest options that make archive-push acknowledge WAL it did not store: PostgreSQL would
# then recycle segments that are in no archive.  pgBackRest reads PGBACKREST_<OPTION> from the
# environment archive_command runs in, so they are refused here.
WAL_DROPPING = {"PGBACKREST_ARCHIVE_PUSH_QUEUE_MAX": "archive-push-queue-max makes pgBackRest drop WAL it "
                "cannot push (and tell PostgreSQL it was archived)"}


def refuse_wal_dropping(env: Env) -> None:
    for var, why in WAL_DROPPING.items():
        if get(env, var):
            raise EnvError(var, why, "unset it: WAL that cannot be archived stays in pg_wal, watch "
                           "howdah_archive_failing and howdah_volume_full_seconds in /metrics instead")


def _kind(env: Env) -> str:
    kind = get(env, "BACKUP_TYPE", "full").lower()
    if kind not in ("full", "diff", "incr"):
        raise EnvError("BACKUP_TYPE", f"{kind!r} is not a pgBackRest backup type", "use full, diff or incr")
    return kind


def verify_crontab(env: Env, archiving: bool) -> tuple[str, ...]:
    """BACKUP_VERIFY_SCHEDULE (cron, UTC; off by default): a restore drill on the first running
    replica (``howdahctl backup verify --scheduled``, run by howdah-cron on every node), with
    BACKUP_VERIFY_OPTIONS appended (e.g. ``--tables=public.orders --amcheck-indexes=50``)."""
    raw = get(env, "BACKUP_VERIFY_SCHEDULE")
    if not raw or raw.lower() in ("off", "none", "false"):
        return ()
    fix = "write five cron fields (minute hour day-of-month month day-of-week, UTC), e.g. '30 3 * * 0'"
    if len(raw.split()) != 5:
        raise EnvError("BACKUP_VERIFY_SCHEDULE", f"{raw!r} has {len(raw.split())} fields, not 5", fix)
    if not archiving:
        raise EnvError("BACKUP_VERIFY_SCHEDULE", "is set but no backup repository is configured",
                       "set WAL_S3_BUCKET (or PGBACKREST=true), or unset BACKUP_VERIFY_SCHEDULE")
    from . import cron

    line = f"{raw} howdahctl backup verify --scheduled"
    try:
        options = shlex.split(get(env, "BACKUP_VERIFY_OPTIONS"))
    except ValueError as exc:
        raise EnvError("BACKUP_VERIFY_OPTIONS", f"cannot be split into arguments ({exc})",
                       "quote it as a shell would, e.g. --tables=public.orders") from None
    for option in options:
        if not option.startswith("--"):
            raise EnvError("BACKUP_VERIFY_OPTIONS", f"{option!r} is not an option of howdahctl backup verify",
                           "give --name=value options, e.g. --tables=public.orders")
    line += "".join(" " + shlex.quote(o) for o in options)
    try:
        cron.parse(line)
    except cron.CronError as exc:
        raise EnvError("BACKUP_VERIFY_SCHEDULE", f"{raw!r} is not a cron schedule ({exc})", fix) from None
    return (line,)


def config_file(s: Settings, of: str = "") -> str:
    """This cluster's pgBackRest config, or (of="clone"/"standby") the self-contained one of the
    cluster a clone restores from or a standby follows (no option inherited from ours)."""
    return f"{s.run_dir}/pgbackrest{'-' + of if of else ''}.conf"


def pgbackrest(s: Settings, stanza: str | None = None, of: str = "") -> str:
    """The pgbackrest command line with this container's config file and a stanza."""
    return f"pgbackrest --config={config_file(s, of)} --stanza={stanza or s.scope}"


def restore_command(s: Settings, stanza: str | None = None, of: str = "") -> str:
    return pgbackrest(s, stanza, of) + ' archive-get %f "%p"'


def agent_fragment(s: Settings) -> dict[str, Any]:
    """What archiving adds to the agent config (empty when archiving is off)."""
    if not s.pgbackrest:
        return {}
    b = s.backup
    return {"archive_health": {
        "interval": b.archive_check_interval, "warn_after": b.archive_warning_after,
        "repository_interval": b.repository_check_interval,
        "pgbackrest_config": config_file(s), "stanza": s.scope, "status_file": status_file(s),
    }, "postgresql": {
        "recovery_conf": {"restore_command": restore_command(s)},
        "create_replica_methods": list(b.methods),
        "pgbackrest": {"command": pgbackrest(s) + " --delta --type=standby restore",
                       "keep_data": True, "no_params": True},
        "wal_e": {"command": f"{RESTORE} --config={s.run_dir}/pgbackrest.conf --stanza={s.scope}",
                  "threshold_megabytes": b.threshold_megabytes,
                  "threshold_backup_size_percentage": b.threshold_percentage,
                  "no_master": 1},
    }}


def status_file(s: Settings) -> str:
    """Where the keeper records its backups' outcomes (read by /metrics)."""
    return f"{s.run_dir}/backup-status.json"


def supervisord_program(s: Settings) -> str:
    """The backup keeper under supervisord (empty when archiving is off)."""
    if not s.pgbackrest:
        return ""
    b = s.backup
    command = (f"{KEEPER} --config={s.run_dir}/pgbackrest.conf --stanza={s.scope} "
               f"--api-url=http://127.0.0.1:{s.apiport}/patroni --interval={b.keeper_interval} "
               f"--status-file={status_file(s)} --type={b.kind} --retry-interval={b.retry_interval}")
    if b.schedule:
        command += f' --schedule="{b.schedule}"'
    if b.retain_days:
        command += f" --retain-days={b.retain_days}"
    return f"""
[program:backup-keeper]
command={command}
priority=40
startsecs=1
startretries=1000
autorestart=true
stopsignal=TERM
stopwaitsecs=10
stdout_logfile=/dev/fd/1
stdout_logfile_maxbytes=0
redirect_stderr=true
"""
