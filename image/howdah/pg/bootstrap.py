"""A new cluster: initdb, roles, post_bootstrap."""
from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

from psycopg2 import sql

from howdah.pg.conf import LIBPQ_TLS_KEYS, Credentials
from howdah.pg.methods import long_options
from howdah.pg.proc import run_logged
from howdah.pg.query import LocalDb

log = logging.getLogger(__name__)


def initdb_options(items: Any) -> list[str]:
    """`bootstrap.initdb`: a list of flags or one-key maps -> initdb arguments."""
    return long_options(items, "bootstrap.initdb", allow_map=False)


def run_initdb(bin_dir: Path, data_dir: Path, options: Sequence[str], superuser: Credentials) -> bool:
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    args = [str(bin_dir / "initdb"), "-D", str(data_dir), *options]
    if not any(o.startswith(("--username", "-U")) for o in options):
        args.append(f"--username={superuser.username}")
    pwfile = None
    if superuser.password:
        pwfile = data_dir.parent / f".{data_dir.name}.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(superuser.password + "\n")
        args.append(f"--pwfile={pwfile}")
    try:
        return run_logged(args, "initdb", timeout=600) == 0
    finally:
        if pwfile is not None:
            pwfile.unlink(missing_ok=True)


def create_role(db: LocalDb, creds: Credentials, options: str) -> None:
    if not creds.username:
        return
    exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (creds.username,))
    verb = "ALTER" if exists else "CREATE"
    stmt = sql.SQL("{} ROLE {} WITH " + options).format(sql.SQL(verb), sql.Identifier(creds.username))
    if creds.password:
        stmt = sql.SQL("{} PASSWORD {}").format(stmt, sql.Literal(creds.password))
    db.execute(stmt.as_string(db._connection()))


REWIND_GRANTS = (
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
)


def create_roles(db: LocalDb, superuser: Credentials, replication: Credentials,
                 rewind: Credentials | None) -> None:
    if superuser.password:
        create_role(db, superuser, "SUPERUSER LOGIN")
    create_role(db, replication, "REPLICATION LOGIN")
    if rewind and rewind.username and rewind.username != superuser.username:
        create_role(db, rewind, "LOGIN")
        for fn in REWIND_GRANTS:
            db.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION " + fn + " TO {}")
                .format(sql.Identifier(rewind.username)).as_string(db._connection())
            )


def run_post_bootstrap(command: str, url: str, pgpass: Path) -> bool:
    args = shlex.split(command) + [url]
    return run_logged(args, "post_bootstrap", env={"PGPASSFILE": str(pgpass)}, timeout=3600) == 0


def local_url(params: Mapping[str, Any]) -> str:
    """The URL post_bootstrap gets: the agent's own connection, with the superuser's libpq
    TLS/GSS options (a pg_hba that wants a client certificate lets the script in too); the
    password comes from PGPASSFILE, never the URL."""
    host = params.get("host", "127.0.0.1")
    url = f"postgres://{quote(str(params.get('user')), safe='')}@{host}:{params.get('port')}/postgres"
    options = [(k, str(params[k])) for k in LIBPQ_TLS_KEYS if params.get(k)]
    return url + ("?" + urlencode(options) if options else "")
