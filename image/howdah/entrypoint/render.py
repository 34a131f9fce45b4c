"""Settings -> file contents, with the jinja2 templates from configs/.  Pure: nothing is written.

``render_all`` returns {file name: (text, mode)} for the run directory; the caller writes them.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Mapping

import jinja2
import yaml

from . import backup, callbacks, clone, standby
from .errors import EnvError
from .merge import MergeError, deep_merge
from .settings import Settings

POST_BOOTSTRAP = "/usr/local/bin/howdah-post-bootstrap"
Files = dict[str, tuple[str, int]]


def templates_dir() -> Path:
    """HOWDAH_TEMPLATES, else /etc/howdah/configs (the image), else configs/ in the source tree."""
    env_dir = os.environ.get("HOWDAH_TEMPLATES")
    candidates = [Path(env_dir)] if env_dir else []
    candidates += [Path("/etc/howdah/configs"), Path(__file__).resolve().parents[3] / "configs"]
    for candidate in candidates:
        if (candidate / "howdah.yml.j2").is_file():
            return candidate
    raise FileNotFoundError("no Howdah templates found (looked in " + ", ".join(map(str, candidates)) + ")")


def environment(directory: Path | None = None) -> jinja2.Environment:
    return _environment(str(directory or templates_dir()))


@functools.lru_cache(maxsize=8)
def _environment(directory: str) -> jinja2.Environment:
    # one per directory: the entrypoint renders everything twice (stand-in passwords first,
    # then the real ones) and each template compiles once (jinja2 reloads it if it changes)
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def ssl_paths(s: Settings) -> tuple[str, str]:
    """Where PostgreSQL finds its certificate and key (given files, or written under run_dir/ssl)."""
    return s.tls.cert_file, s.tls.key_file


def post_bootstrap_command(s: Settings) -> str:
    return POST_BOOTSTRAP + (" --admin" if s.use_admin else "")


def verify_server(s: Settings) -> bool:
    """Replication and rewind connections verify the server (verify-ca against SSL_CA) when a
    CA is configured and PostgreSQL's certificate is the operator's (given as PEM text or a
    file), not the self-signed one made at start, which no CA signed."""
    cert_given = any(path == s.tls.cert_file for path, _, _ in s.tls.writes) or \
        s.tls.cert_file != f"{s.run_dir}/ssl/server.crt"
    return bool(s.tls.ca_file) and cert_given


def agent_config(s: Settings, env: jinja2.Environment) -> dict[str, Any]:
    cert, key = ssl_paths(s)
    text = env.get_template("howdah.yml.j2").render(
        s=s, dcs_yaml=yaml.safe_dump(s.dcs.section(), default_flow_style=False).rstrip(),
        ssl_cert=cert, ssl_key=key, post_bootstrap=post_bootstrap_command(s),
        verify_server=verify_server(s),
    )
    config: dict[str, Any] = yaml.safe_load(text)
    config = deep_merge(deep_merge(config, backup.agent_fragment(s)), clone.agent_fragment(s))
    config = deep_merge(config, standby.agent_fragment(s))
    callbacks.apply(config, s.hooks)  # before the overlays, which may still set callbacks
    for variable, overlay in s.overlays:
        try:
            config = deep_merge(config, overlay)
        except MergeError as exc:
            raise EnvError(variable, str(exc), "see configs/README.md for the merge rules") from None
    return config


def check_agent_config(text: str, env: Mapping[str, str]) -> None:
    """Validate the rendered agent YAML as the agent will (with its PATRONI_* overrides), so a
    config the agent would refuse stops the container now, with one line, instead of making
    supervisord restart the agent over and over."""
    from howdah.agent.archive_health import ArchiveConfig, ArchiveConfigError
    from howdah.config.load import ConfigError, apply_env, validate

    tree = yaml.safe_load(text)
    try:
        apply_env(tree, env)
        validate(tree)
        ArchiveConfig.from_raw(tree.get("archive_health"))
    except (ConfigError, ArchiveConfigError) as exc:
        raise EnvError(f"agent config field {exc.field}", str(exc).split(": ", 1)[-1],
                       "fix the variable, SPILO_CONFIGURATION or HOWDAH_CONFIGURATION that sets it") from None


def pgbouncer_settings(s: Settings) -> tuple[dict[str, str], dict[str, Any]]:
    assert isinstance(s.pgbouncer_settings, dict)
    databases: dict[str, str] = {"*": f"host=127.0.0.1 port={s.pgport}"}
    settings: dict[str, Any] = {
        "listen_addr": "*",
        "listen_port": s.pgbouncer_port,
        "unix_socket_dir": "/var/run/postgresql",
        "auth_type": s.pgbouncer_auth,
        "auth_file": f"{s.pgbouncer_dir}/userlist.txt",
        "admin_users": s.superuser.name,
        "stats_users": s.admin.name,
        "pool_mode": "session",
        "max_client_conn": 500,
        "default_pool_size": 20,
        "ignore_startup_parameters": "extra_float_digits,options",
        "server_tls_sslmode": "prefer",
        "log_connections": 0,
        "log_disconnections": 0,
    }
    extra = dict(s.pgbouncer_settings)
    if "databases" in extra:
        databases = {str(k): str(v) for k, v in extra.pop("databases").items()}
    settings.update(extra)
    return databases, settings


def render_all(s: Settings, directory: Path | None = None) -> Files:
    env = environment(directory)
    files: Files = {
        "howdah.yml": (yaml.safe_dump(agent_config(s, env), default_flow_style=False, sort_keys=False), 0o600),
        "supervisord.conf": (env.get_template("supervisord.conf.j2").render(s=s) + backup.supervisord_program(s), 0o644),
        "pgbackrest.conf": (env.get_template("pgbackrest.conf.j2").render(
            s=s, repo=s.repo, stanza=s.scope, own=True, why="This cluster's own repository."), 0o600),
    }
    if s.crontab:
        files["crontab"] = ("".join(line + "\n" for line in s.crontab), 0o600)
    if s.clone and s.clone.from_backup:
        files["pgbackrest-clone.conf"] = (env.get_template("pgbackrest.conf.j2").render(
            s=s, repo=s.clone.repo, stanza=s.clone.scope, own=False,
            why=f"The cluster this one is cloned from (CLONE_SCOPE {s.clone.scope}): read, never written."), 0o600)
    if s.standby_source and s.standby_source.repo:
        files["pgbackrest-standby.conf"] = (env.get_template("pgbackrest.conf.j2").render(
            s=s, repo=s.standby_source.repo, stanza=s.standby_source.scope, own=False,
            why=f"The cluster this standby cluster follows (STANDBY_SCOPE {s.standby_source.scope}): read, never written."),
            0o600)
    if s.pgbouncer:
        where = "" if s.pgbouncer_dir == s.run_dir else s.pgbouncer_dir + "/"  # names are relative to run_dir
        if isinstance(s.pgbouncer_settings, str):  # Spilo's whole pgbouncer.ini, as given
            files[f"{where}pgbouncer.ini"] = (s.pgbouncer_settings, 0o600)
        else:
            databases, settings = pgbouncer_settings(s)
            files[f"{where}pgbouncer.ini"] = (env.get_template("pgbouncer.ini.j2").render(databases=databases, settings=settings), 0o600)
        userlist = s.pgbouncer_userlist or env.get_template("userlist.txt.j2").render(users=[s.superuser, s.admin])
        files[f"{where}userlist.txt"] = (userlist, 0o600)
    return files
