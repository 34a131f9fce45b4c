"""PostgreSQL configuration files written by the agent.

postgresql.conf is ours: the file initdb wrote is kept as postgresql.base.conf
and included first, so anything we set wins.  Recovery settings (PG >= 12)
live in postgresql.conf too, with standby.signal marking a replica.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from howdah.core.settings import valid_name

MARKER = "# Written by howdah: edit the agent's configuration instead."

# Parameters the agent needs for replication and rewind; the user may raise them.
BASE_PARAMETERS: Mapping[str, Any] = {
    "wal_level": "replica",
    "hot_standby": "on",
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "wal_log_hints": "on",
    "max_connections": 100,
    "wal_keep_size": "128MB",
}


# libpq's TLS/GSS keys accepted in postgresql.authentication.<role>, as in Patroni
LIBPQ_TLS_KEYS = ("sslmode", "sslcert", "sslkey", "sslpassword", "sslrootcert", "sslcrl",
                  "sslcrldir", "sslnegotiation", "gssencmode", "channel_binding")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str | None
    tls: tuple[tuple[str, str], ...] = ()  # (libpq key, value) pairs

    def tls_options(self, libpq_major: int | None = None) -> dict[str, str]:
        """The TLS/GSS connection options; sslnegotiation only for a libpq of 17+.  A root
        certificate without an sslmode verifies the server (verify-ca): libpq's default, prefer,
        would not look at it, and a replication or rewind connection would take any server."""
        options = {k: v for k, v in self.tls if k != "sslnegotiation" or (libpq_major or 0) >= 17}
        if options.get("sslrootcert") and "sslmode" not in options:
            options["sslmode"] = "verify-ca"
        return options


def quote(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace("'", "''")
    # a line break would end the value's line: written as the escape postgres reads back
    return "'" + text.replace("\n", "\\n").replace("\r", "\\r") + "'"


def conninfo_quote(value: str) -> str:
    if value and all(c not in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={conninfo_quote(str(v))}" for k, v in params.items() if v not in (None, ""))


def split_conn_url(conn_url: str) -> tuple[str, int]:
    parts = urlsplit(conn_url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def upstream_conninfo(conn_url: str, creds: Credentials, app_name: str, passfile: str,
                      libpq_major: int | None = None) -> str:
    host, port = split_conn_url(conn_url)
    return conninfo({
        "host": host, "port": port, "user": creds.username, "passfile": passfile,
        "application_name": app_name, "sslmode": "prefer", "gssencmode": "disable",
        **creds.tls_options(libpq_major),
        # a WAL receiver connecting to an upstream cut off by a DROP rule gives up
        # after this (not the kernel's ~2 min of SYN retries) and tries again
        "connect_timeout": "5",
        "target_session_attrs": "any", "dbname": "postgres",
    })


def slot_name(member: str) -> str:
    """A physical slot name for a member: lower case, [a-z0-9_]."""
    from howdah.core.slots import slot_name as member_slot
    return member_slot(member)


def listen_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "*", int(port or 5432)


def render_conf(
    listen: str,
    parameters: Mapping[str, Any],
    recovery: Mapping[str, Any] | None,
) -> str:
    host, port = listen_port(listen)
    merged: dict[str, Any] = dict(BASE_PARAMETERS)
    # never a name that is not a GUC identifier: it could write a line of its own
    merged.update((k, v) for k, v in parameters.items() if valid_name(k))
    merged["listen_addresses"] = host.replace("0.0.0.0", "*") if host else "*"
    merged["port"] = port
    lines = [MARKER, "include_if_exists 'postgresql.base.conf'"]
    lines += [f"{k} = {quote(v)}" for k, v in sorted(merged.items())]
    if recovery:
        lines.append("# recovery")
        lines += [f"{k} = {quote(v)}" for k, v in recovery.items()
                  if v not in (None, "") and valid_name(k)]
    return "\n".join(lines) + "\n"


def write_files(
    data_dir: Path,
    listen: str,
    parameters: Mapping[str, Any],
    pg_hba: tuple[str, ...],
    recovery: Mapping[str, Any] | None,
    standby: bool | None,
) -> None:
    """Write postgresql.conf, pg_hba.conf and the standby signal.

    standby None leaves the signal files as they are (a restore tool's own)."""
    conf = data_dir / "postgresql.conf"
    base = data_dir / "postgresql.base.conf"
    if conf.exists() and not base.exists() and MARKER not in conf.read_text(errors="replace"):
        conf.rename(base)
    _atomic_write(conf, render_conf(listen, parameters, recovery))
    if pg_hba:
        _atomic_write(data_dir / "pg_hba.conf", "\n".join(pg_hba) + "\n")
    if standby is None:
        return
    signal_file = data_dir / "standby.signal"
    if standby:
        signal_file.touch()
    elif signal_file.exists():
        signal_file.unlink()
    (data_dir / "recovery.signal").unlink(missing_ok=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# Host names a pgpass line gives for this machine's own server, besides its listen addresses
# and socket directories (libpq looks "localhost" up for a socket in its default directory).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _pgpass_field(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def pgpass_lines(entries: list[tuple[str, int, Credentials]]) -> list[str]:
    """One `host:port:*:user:password` line per (host, port, credentials) with a password: never
    a wildcard host or port, so libpq hands a password only to the server it was written for."""
    lines: list[str] = []
    for host, port, c in entries:
        if not host or not c.username or c.password is None:
            continue
        line = ":".join((_pgpass_field(host), _pgpass_field(port), "*", _pgpass_field(c.username),
                         _pgpass_field(c.password)))
        if line not in lines:
            lines.append(line)
    return lines


def write_pgpass(path: Path, entries: list[tuple[str, int, Credentials]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(pgpass_lines(entries)) + "\n")
    os.replace(tmp, path)


def configured_upstream(data_dir: Path) -> str | None:
    """host:port in the primary_conninfo we last wrote, if any."""
    try:
        text = (data_dir / "postgresql.conf").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("primary_conninfo = "):
            value = line.split("=", 1)[1].strip().strip("'").replace("''", "'")
            fields = dict(
                item.split("=", 1) for item in value.split() if "=" in item
            )
            host, port = fields.get("host"), fields.get("port", "5432")
            return f"{host}:{port}" if host else None
    return None


# PostgreSQL's recovery settings (PG >= 12): the agent writes them to postgresql.conf
# itself; left in postgresql.auto.conf (pg_basebackup -R, restore tools) they would win
# over ours and travel to every replica cloned from this node.
RECOVERY_PARAMETERS = frozenset({
    "restore_command", "archive_cleanup_command", "recovery_end_command",
    "recovery_target", "recovery_target_name", "recovery_target_time", "recovery_target_xid",
    "recovery_target_lsn", "recovery_target_inclusive", "recovery_target_timeline",
    "recovery_target_action", "primary_conninfo", "primary_slot_name", "promote_trigger_file",
    "recovery_min_apply_delay", "standby_mode", "trigger_file", "pause_at_recovery_target",
})


def strip_auto_conf_recovery(data_dir: Path) -> list[str]:
    """Remove the recovery settings from postgresql.auto.conf; the names removed."""
    path = data_dir / "postgresql.auto.conf"
    try:
        lines = path.read_text(errors="replace").splitlines(keepends=True)
    except OSError:
        return []
    kept, removed = [], []
    for line in lines:
        name = line.split("=", 1)[0].strip().lower() if "=" in line else ""
        if name in RECOVERY_PARAMETERS and not line.lstrip().startswith("#"):
            removed.append(name)
        else:
            kept.append(line)
    if removed:
        _atomic_write(path, "".join(kept))
    return removed


def bootstrap_hba(superuser: str, replication: str, addresses: list[str]) -> tuple[str, ...]:
    """pg_hba.conf while a custom bootstrap runs: what the method restored may carry
    another cluster's passwords, so the agent's own users get in without one, from the
    local socket and the agent's own address only, until the roles are (re)set."""
    superuser, replication = _hba_name(superuser), _hba_name(replication)
    lines = [f"local replication {replication} trust", f"local all {superuser} trust"]
    for addr in addresses:
        mask = "128" if ":" in addr else "32"
        lines += [f"host replication {replication} {addr}/{mask} trust",
                  f"host all {superuser} {addr}/{mask} trust"]
    return tuple(lines)


def _hba_name(name: str) -> str:
    if name and all(c.isalnum() or c == "_" for c in name) and name == name.lower():
        return name
    return '"' + name.replace('"', '""') + '"'


def addresses(host: str) -> list[str]:
    """The IP addresses `host` stands for (a socket directory: none)."""
    if not host or host.startswith("/"):
        return []
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError:
        return [host]
    return sorted({str(i[4][0]) for i in infos})


atomic_write = _atomic_write
