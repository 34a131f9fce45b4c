"""Environment -> Settings: every variable is read and validated here, before anything is written.

Facts about the container that are not in the environment (host name, IP address, memory
limit) are passed in, so this module is pure: the same env and facts give the same Settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from . import backup, callbacks, clone, dcs, pgversion as pgmajor, values
from .errors import EnvError
from .memory import MemorySizing
from .values import Env, get

DEFAULT_HOME = "/home/postgres"
DEFAULT_RUN_DIR = "/run/howdah"


@dataclass(frozen=True)
class Facts:
    hostname: str
    ip: str
    memory: MemorySizing
    # Majors whose binaries the image has (empty: do not check), and PGDATA -> its PG_VERSION.
    pg_majors: tuple[str, ...] = ()
    read_data_major: Callable[[str], str | None] = lambda _pgdata: None
    # DNS name -> ["host:port", ...] from its SRV records (ETCD*_DISCOVERY_DOMAIN)
    srv: Callable[[str], list[str]] = dcs.no_srv


@dataclass(frozen=True)
class User:
    name: str
    password: str
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
    memory: MemorySizing
    pgbouncer: bool
    pgbouncer_port: int
    pgbouncer_auth: str
    pgbouncer_settings: dict[str, Any]
    pgbackrest: bool
    s3: dict[str, str]
    callback_script: str
    ssl_certificate: str
    ssl_private_key: str
    standby_cluster: dict[str, Any]
    stop_timeout: int
    overlays: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hooks: callbacks.Hooks = field(default_factory=callbacks.Hooks)  # CALLBACK_SCRIPT, VIP, AWS
    backup: backup.Backup = field(default_factory=backup.Backup)  # pgBackRest methods, keeper
    clone: clone.Clone | None = None  # CLONE_METHOD

    @property
    def local_etcd(self) -> bool:
        return self.dcs.kind == "local"


def _user(env: Env, role: str, name: str, password: str) -> User:
    user_var, pass_var = f"PGUSER_{role}", f"PGPASSWORD_{role}"
    user = get(env, user_var, name)
    if not user.replace("_", "").replace("-", "").isalnum():
        raise EnvError(user_var, f"{user!r} is not a plain role name", "use letters, digits, _ or -")
    supplied = get(env, pass_var)
    return User(user, supplied or password, defaulted=not supplied)


def _pgbouncer(env: Env) -> tuple[bool, dict[str, Any]]:
    config = values.yaml_mapping(env, "PGBOUNCER_CONFIGURATION")
    enabled = values.boolean(env, "PGBOUNCER", bool(env.get("PGBOUNCER_CONFIGURATION", "").strip()))
    for key, value in config.items():
        if key != "databases" and isinstance(value, (dict, list)):
            raise EnvError("PGBOUNCER_CONFIGURATION", f"setting {key!r} is not a scalar",
                           "give pgbouncer settings as key: value (databases: as a mapping)")
    if "databases" in config and not isinstance(config["databases"], dict):
        raise EnvError("PGBOUNCER_CONFIGURATION", "'databases' is not a mapping", "write databases: {name: 'host=... dbname=...'}")
    return enabled, config


def _s3(env: Env) -> dict[str, str]:
    bucket = get(env, "WAL_S3_BUCKET")
    if not bucket:
        return {}
    endpoint = get(env, "AWS_ENDPOINT")
    region = get(env, "AWS_REGION", "us-east-1")
    if endpoint and "://" in endpoint:
        values.url({"AWS_ENDPOINT": endpoint}, "AWS_ENDPOINT")
    return {
        "bucket": bucket,
        "endpoint": endpoint.split("://", 1)[-1].rstrip("/") or f"s3.{region}.amazonaws.com",
        "region": region,
        "key": get(env, "AWS_ACCESS_KEY_ID"),
        "secret": get(env, "AWS_SECRET_ACCESS_KEY"),
        "uri_style": "path" if values.boolean(env, "AWS_S3_FORCE_PATH_STYLE") else "host",
        "retain": str(values.integer(env, "BACKUP_NUM_TO_RETAIN", 5, minimum=1)),
    }


def _standby_cluster(env: Env) -> dict[str, Any]:
    host = get(env, "STANDBY_HOST")
    if not host:
        return {}
    result: dict[str, Any] = {"host": host, "port": values.port(env, "STANDBY_PORT", 5432)}
    slot = get(env, "STANDBY_PRIMARY_SLOT_NAME")
    if slot:
        result["primary_slot_name"] = slot
    return result


def load(env: Env, facts: Facts) -> Settings:
    """Validate the environment; raises EnvError on the first bad variable."""
    home = get(env, "HOME_DIR", DEFAULT_HOME)
    pgroot = get(env, "PGROOT", f"{home}/pgdata/pgroot")
    pgdata = get(env, "PGDATA", f"{pgroot}/data")
    pgversion = pgmajor.choose(get(env, "PGVERSION"), pgdata, facts.pg_majors, facts.read_data_major)
    store = dcs.from_env(env, facts.ip, facts.srv)
    scope = get(env, "SCOPE")
    if not scope:
        if store.kind != "local":
            raise EnvError("SCOPE", "not set while an external DCS is configured",
                           "set SCOPE to the cluster name shared by all its members")
        scope = "demo"
    overlays = [(n, values.yaml_mapping(env, n)) for n in ("SPILO_CONFIGURATION", "HOWDAH_CONFIGURATION")]
    dcs.refuse_unsupported({}, overlays)
    pgbouncer, pgbouncer_settings = _pgbouncer(env)
    s3 = _s3(env)
    namespace = get(env, "NAMESPACE", "/service/")
    return Settings(
        scope=scope,
        name=get(env, "POD_NAME", facts.hostname),
        namespace=namespace if namespace.startswith("/") else "/" + namespace,
        connect_host=get(env, "POD_IP", facts.ip),
        pgversion=pgversion,
        pgport=values.port(env, "PGPORT", 5432),
        apiport=values.port(env, "APIPORT", 8008),
        pgroot=pgroot,
        pgdata=pgdata,
        bin_dir=get(env, "PGBIN", f"/usr/lib/postgresql/{pgversion}/bin"),
        home=home,
        run_dir=get(env, "HOWDAH_RUN_DIR", DEFAULT_RUN_DIR),
        dcs=store,
        superuser=_user(env, "SUPERUSER", "postgres", "postgres"),
        standby=_user(env, "STANDBY", "standby", "standby"),
        admin=_user(env, "ADMIN", "admin", "admin"),
        memory=facts.memory,
        pgbouncer=pgbouncer,
        pgbouncer_port=values.port(env, "PGBOUNCER_PORT", 6432),
        pgbouncer_auth=_pgbouncer_auth(env),
        pgbouncer_settings=pgbouncer_settings,
        pgbackrest=bool(s3) or values.boolean(env, "PGBACKREST"),
        s3=s3,
        callback_script=get(env, "CALLBACK_SCRIPT"),
        ssl_certificate=get(env, "SSL_CERTIFICATE_FILE", get(env, "SSL_CERTIFICATE")),
        ssl_private_key=get(env, "SSL_PRIVATE_KEY_FILE", get(env, "SSL_PRIVATE_KEY")),
        standby_cluster=_standby_cluster(env),
        stop_timeout=values.integer(env, "HOWDAH_STOP_TIMEOUT", 50, minimum=5),
        overlays=overlays,
        hooks=callbacks.from_env(env),
        backup=backup.from_env(env, home),
        clone=clone.from_env(env, scope, get(env, "PGUSER_STANDBY", "standby")),
    )


_AUTH_TYPES = ("scram-sha-256", "md5", "plain", "trust", "any", "hba", "cert")


def _pgbouncer_auth(env: Env) -> str:
    auth = get(env, "PGBOUNCER_AUTHENTICATION", "scram-sha-256")
    if auth not in _AUTH_TYPES:
        raise EnvError("PGBOUNCER_AUTHENTICATION", f"{auth!r} is not a pgbouncer auth_type", "use one of " + ", ".join(_AUTH_TYPES))
    return auth
