"""Environment -> Settings: every variable is read and validated here, before anything is written.

Facts about the container that are not in the environment (host name, IP address, memory
limit) are passed in, so this module is pure: the same env and facts give the same Settings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from . import backup, callbacks, clone, cron, dcs, pgversion as pgmajor, repo, standby as standby_env, tls, values
from .errors import EnvError
from .memory import MemorySizing
from .repo import Repo
from .values import Env, get

DEFAULT_HOME = "/home/postgres"
DEFAULT_RUN_DIR = "/run/howdah"
SPILO_PGBOUNCER_DIR = "/run/pgbouncer"


@dataclass(frozen=True)
class Facts:
    hostname: str
    ip: str
    memory: MemorySizing
    # Majors whose binaries the image has (empty: do not check), and PGDATA -> its PG_VERSION.
    pg_majors: tuple[str, ...] = ()
    read_data_major: Callable[[str], str | None] = lambda _pgdata: None
    # The OS user the servers run as (pg_hba's peer line names it when it is the superuser).
    os_user: str = "postgres"
    # Locales `locale -a` lists (empty: do not check INITDB_LOCALE).
    locales: tuple[str, ...] = ()


@dataclass(frozen=True)
class User:
    name: str
    password: str
    # not set in the environment: generated once and kept in the volume (see credentials.py)
    defaulted: bool = False


@dataclass(frozen=True)
class Settings:
    scope: str
    name: str
    namespace: str
    connect_host: str
    pgversion: str
    pgport: int
    apiport: int
    pgroot: str
    pgdata: str
    bin_dir: str
    home: str
    run_dir: str
    dcs: dcs.Dcs
    superuser: User
    standby: User
    admin: User
    restapi: User
    restapi_auth_reads: bool
    allow_nossl: bool
    os_user: str
    memory: MemorySizing
    pgbouncer: bool
    pgbouncer_port: int
    pgbouncer_auth: str
    pgbouncer_settings: dict[str, Any] | str  # a str: Spilo's whole pgbouncer.ini text
    pgbackrest: bool
    repo: Repo | None  # object storage (WAL_S3_BUCKET, ...); None: posix PGBACKREST_REPO_PATH
    callback_script: str
    standby_cluster: dict[str, Any]
    stop_timeout: int
    overlays: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tls: tls.Tls = field(default_factory=lambda: tls.Tls("", ""))  # SSL_* (Spilo's names)
    restapi_connect_host: str = ""  # RESTAPI_CONNECT_ADDRESS, else connect_host
    initdb_locale: str = "en_US.UTF-8"  # INITDB_LOCALE
    use_admin: bool = False  # USE_ADMIN (default: PGPASSWORD_ADMIN is set, as in Spilo)
    log_to_stdout: bool = False  # LOG_TO_STDOUT
    crontab: tuple[str, ...] = ()  # CRONTAB: extra cron lines run as postgres
    cert_reload: bool = False  # SSL_TEST_RELOAD (default: certificates were given)
    pgbouncer_userlist: str = ""  # Spilo's PGBOUNCER_AUTHENTICATION / PGBOUNCER_AUTH: userlist.txt text
    hooks: callbacks.Hooks = field(default_factory=callbacks.Hooks)  # CALLBACK_SCRIPT, VIP, AWS
    backup: backup.Backup = field(default_factory=backup.Backup)  # pgBackRest methods, keeper
    clone: clone.Clone | None = None  # CLONE_METHOD
    standby_source: standby_env.Standby | None = None  # STANDBY_HOST and/or STANDBY_WAL_S3_BUCKET (standby.py)
    notes: tuple[str, ...] = ()  # INFO/WARNING lines the entrypoint prints (how variables were mapped)

    @property
    def pgbouncer_dir(self) -> str:
        """Spilo's /run/pgbouncer for its pgbouncer.ini text (whose auth_file points there),
        else the run directory."""
        return SPILO_PGBOUNCER_DIR if isinstance(self.pgbouncer_settings, str) else self.run_dir

    @property
    def local_etcd(self) -> bool:
        return self.dcs.kind == "local"


def _user(env: Env, role: str, name: str) -> User:
    """PGUSER_<role> and PGPASSWORD_<role>; no password set: one is generated at start."""
    user_var, pass_var = f"PGUSER_{role}", f"PGPASSWORD_{role}"
    user = get(env, user_var, name)
    if not user.replace("_", "").replace("-", "").isalnum():
        raise EnvError(user_var, f"{user!r} is not a plain role name", "use letters, digits, _ or -")
    supplied = get(env, pass_var)
    return User(user, supplied, defaulted=not supplied)


def _restapi(env: Env) -> User:
    """PATRONI_RESTAPI_USERNAME/PASSWORD: both or neither (then generated at start)."""
    user, password = get(env, "PATRONI_RESTAPI_USERNAME"), get(env, "PATRONI_RESTAPI_PASSWORD")
    fix = "set both PATRONI_RESTAPI_USERNAME and PATRONI_RESTAPI_PASSWORD, or neither (credentials are then generated)"
    if password and not user:
        raise EnvError("PATRONI_RESTAPI_USERNAME", "is not set while PATRONI_RESTAPI_PASSWORD is", fix)
    if user and not password:
        raise EnvError("PATRONI_RESTAPI_PASSWORD", "is not set while PATRONI_RESTAPI_USERNAME is", fix)
    if user and any(c in user for c in ":\r\n"):
        raise EnvError("PATRONI_RESTAPI_USERNAME", "holds a ':' or a line break", "use a plain name, e.g. howdah")
    return User(user or "howdah", password, defaulted=not user)


def _pgbouncer(env: Env) -> tuple[bool, dict[str, Any] | str]:
    """PGBOUNCER_CONFIGURATION: Spilo's form, a whole pgbouncer.ini text (it has a [section]
    line), written as given; or Howdah's, a YAML mapping of [pgbouncer] settings."""
    raw = env.get("PGBOUNCER_CONFIGURATION", "")
    enabled = values.boolean(env, "PGBOUNCER", bool(raw.strip()))
    if _is_ini(raw):
        if "\0" in raw:
            raise EnvError("PGBOUNCER_CONFIGURATION", "holds a NUL byte", "give the pgbouncer.ini text")
        if not any(line.strip().lower() == "[pgbouncer]" for line in raw.splitlines()):
            raise EnvError("PGBOUNCER_CONFIGURATION", "is an ini text without a [pgbouncer] section",
                           "add a [pgbouncer] section (listen_port, auth_file, ...)")
        return enabled, raw.strip() + "\n"
    config = values.yaml_mapping(env, "PGBOUNCER_CONFIGURATION")
    for key, value in config.items():
        if key != "databases" and isinstance(value, (dict, list)):
            raise EnvError("PGBOUNCER_CONFIGURATION", f"setting {key!r} is not a scalar",
                           "give pgbouncer settings as key: value (databases: as a mapping)")
        values.single_line("PGBOUNCER_CONFIGURATION", f"{key}{value}")
    if "databases" in config and not isinstance(config["databases"], dict):
        raise EnvError("PGBOUNCER_CONFIGURATION", "'databases' is not a mapping", "write databases: {name: 'host=... dbname=...'}")
    for key, value in (config.get("databases") or {}).items():
        values.single_line("PGBOUNCER_CONFIGURATION", f"{key}{value}")
    return enabled, config


def _is_ini(text: str) -> bool:
    return any(line.strip().startswith("[") and line.strip().endswith("]") and "," not in line
               for line in text.splitlines())


def load(env: Env, facts: Facts) -> Settings:
    """Validate the environment; raises EnvError on the first bad variable."""
    home = get(env, "PGHOME", get(env, "HOME_DIR", DEFAULT_HOME))
    pgroot = get(env, "PGROOT", f"{home}/pgdata/pgroot")
    pgdata = get(env, "PGDATA", f"{pgroot}/data")
    pgversion = pgmajor.choose(get(env, "PGVERSION"), pgdata, facts.pg_majors, facts.read_data_major)
    store = dcs.from_env(env, facts.ip)
    scope = get(env, "SCOPE")
    if not scope:
        if store.kind != "local":
            raise EnvError("SCOPE", "not set while an external DCS is configured",
                           "set SCOPE to the cluster name shared by all its members")
        scope = "demo"
    values.cluster_name("SCOPE", scope, 63)
    name = values.cluster_name("POD_NAME" if get(env, "POD_NAME") else "HOSTNAME", get(env, "POD_NAME", facts.hostname), 253)
    overlays = [(n, values.yaml_mapping(env, n)) for n in ("SPILO_CONFIGURATION", "HOWDAH_CONFIGURATION")]
    dcs.refuse_unsupported({}, overlays)
    pgbouncer, pgbouncer_settings = _pgbouncer(env)
    store_repo = repo.repository(env, scope)
    notes = tuple(repo.wal_tool_notes(env)) + (store_repo.notes if store_repo else ())
    namespace = get(env, "NAMESPACE", "/service/")
    run_dir = get(env, "HOWDAH_RUN_DIR", DEFAULT_RUN_DIR)
    connect_host = get(env, "POD_IP", facts.ip)
    standby_source = standby_env.from_env(env, scope)
    if standby_source is not None and standby_source.repo is not None:
        notes += standby_source.repo.notes
    return Settings(
        scope=scope,
        name=name,
        namespace=namespace if namespace.startswith("/") else "/" + namespace,
        connect_host=connect_host,
        pgversion=pgversion,
        pgport=values.port(env, "PGPORT", 5432),
        apiport=values.port(env, "APIPORT", 8008),
        pgroot=pgroot,
        pgdata=pgdata,
        bin_dir=get(env, "PGBIN", f"/usr/lib/postgresql/{pgversion}/bin"),
        home=home,
        run_dir=run_dir,
        dcs=store,
        superuser=_user(env, "SUPERUSER", "postgres"),
        standby=_user(env, "STANDBY", "standby"),
        admin=_user(env, "ADMIN", "admin"),
        restapi=_restapi(env),
        restapi_auth_reads=values.boolean(env, "HOWDAH_RESTAPI_AUTH_READS"),
        allow_nossl=values.boolean(env, "ALLOW_NOSSL"),
        os_user=facts.os_user,
        memory=facts.memory,
        pgbouncer=pgbouncer,
        pgbouncer_port=values.port(env, "PGBOUNCER_PORT", 6432),
        pgbouncer_auth=_pgbouncer_auth(env)[0],
        pgbouncer_userlist=_pgbouncer_auth(env)[1],
        pgbouncer_settings=pgbouncer_settings,
        pgbackrest=bool(store_repo) or values.boolean(env, "PGBACKREST"),
        repo=store_repo,
        callback_script=get(env, "CALLBACK_SCRIPT"),
        tls=tls.from_env(env, run_dir),
        restapi_connect_host=_connect_host(env, "RESTAPI_CONNECT_ADDRESS", connect_host),
        initdb_locale=_locale(env, facts.locales),
        use_admin=values.boolean(env, "USE_ADMIN", bool(get(env, "PGPASSWORD_ADMIN"))),
        log_to_stdout=values.boolean(env, "LOG_TO_STDOUT"),
        crontab=_crontab(env) + backup.verify_crontab(env, bool(store_repo) or values.boolean(env, "PGBACKREST")),
        cert_reload=values.boolean(env, "SSL_TEST_RELOAD", any(get(env, n) for n in _CERT_VARIABLES)),
        standby_cluster=standby_source.section() if standby_source else {},
        standby_source=standby_source,
        stop_timeout=values.integer(env, "HOWDAH_STOP_TIMEOUT", 50, minimum=5),
        overlays=overlays,
        hooks=callbacks.from_env(env),
        backup=backup.from_env(env, home),
        clone=clone.from_env(env, scope, get(env, "PGUSER_STANDBY", "standby")),
        notes=notes,
    )


_CERT_VARIABLES = tuple(f"SSL_{n}{f}" for n in ("CERTIFICATE", "PRIVATE_KEY", "CA", "CRL") for f in ("", "_FILE"))
_AUTH_TYPES = ("scram-sha-256", "md5", "plain", "trust", "any", "hba", "cert")


def _pgbouncer_auth(env: Env) -> tuple[str, str]:
    """PGBOUNCER_AUTHENTICATION: an auth_type (Howdah's), or Spilo's userlist.txt text (also
    PGBOUNCER_AUTH): lines of "user" "password"."""
    raw = get(env, "PGBOUNCER_AUTHENTICATION") or get(env, "PGBOUNCER_AUTH")
    name = "PGBOUNCER_AUTHENTICATION" if get(env, "PGBOUNCER_AUTHENTICATION") else "PGBOUNCER_AUTH"
    if not raw or raw in _AUTH_TYPES:
        return raw or "scram-sha-256", ""
    lines = [line.strip() for line in raw.splitlines() if line.strip() and not line.strip().startswith(";")]
    if lines and all(_USERLIST_LINE.match(line) for line in lines):
        return "scram-sha-256", "\n".join(lines) + "\n"
    raise EnvError(name, f"{raw.splitlines()[0][:40]!r} is neither a pgbouncer auth_type nor userlist.txt lines",
                   "use one of " + ", ".join(_AUTH_TYPES) + ', or lines of "user" "password"')


_USERLIST_LINE = re.compile(r'^"(?:[^"]|"")+"\s+"(?:[^"]|"")*"(\s.*)?$')


def _connect_host(env: Env, name: str, default: str) -> str:
    """A host name or address other members reach this node's REST API on (no port)."""
    host = get(env, name, default)
    if not values.HOST.match(host):
        raise EnvError(name, f"{host!r} is not a host name or address", "give a host name or IP address, without a port")
    return host


def _locale(env: Env, available: tuple[str, ...]) -> str:
    """INITDB_LOCALE: Spilo's form is a bare locale (en_US) to which .UTF-8 is added."""
    raw = get(env, "INITDB_LOCALE", "en_US")
    name = raw if "." in raw or raw in ("C", "POSIX") else f"{raw}.UTF-8"
    if not values.LOCALE.match(name):
        raise EnvError("INITDB_LOCALE", f"{raw!r} is not a locale name", "give a locale such as en_US or de_DE.UTF-8")
    # The default (en_US, compiled into the image) is not checked, so the entrypoint also
    # renders on hosts without it; a locale the user names must exist.
    if available and get(env, "INITDB_LOCALE") and _norm(name) not in {_norm(a) for a in available}:
        raise EnvError("INITDB_LOCALE", f"{name} is not a locale of the image",
                       "use one of " + ", ".join(sorted(a for a in available if "." in a)[:8]))
    return name


def _norm(locale_name: str) -> str:
    """locale -a writes en_US.utf8 for en_US.UTF-8."""
    lang, _, codeset = locale_name.partition(".")
    return lang + "." + codeset.lower().replace("-", "") if codeset else lang


def _crontab(env: Env) -> tuple[str, ...]:
    """CRONTAB: a YAML (or JSON) list of cron lines, '[]' by default, as in Spilo."""
    raw = get(env, "CRONTAB", "[]")
    try:
        lines = yaml.safe_load(raw)
    except yaml.YAMLError:
        lines = None
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise EnvError("CRONTAB", "is not a list of cron lines",
                       "write it as a YAML list, e.g. [\"*/5 * * * * psql -c 'select 1'\"]")
    for line in lines:
        try:
            cron.parse(line)
        except cron.CronError as exc:
            raise EnvError("CRONTAB", f"{line!r} is not a cron line ({exc})",
                           "give five schedule fields and a command on one line, e.g. '0 3 * * * vacuumdb -a'") from None
    return tuple(lines)
