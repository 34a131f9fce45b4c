#!/usr/bin/python3
"""Run once by the agent after it created a new cluster (bootstrap.post_bootstrap).

Arguments: ``[--admin] CONNECTION_URL``, the URL for the local superuser (PGPASSFILE is set by
the agent; Patroni appends the URL to the configured command).  With --admin (USE_ADMIN, which
defaults to PGPASSWORD_ADMIN being set, as in Spilo) creates the admin role from PGUSER_ADMIN /
PGPASSWORD_ADMIN (unset: the password the entry point generated, from the file
HOWDAH_CREDENTIALS names; there is no built-in one); when pgBackRest archiving is on, the
pgBackRest stanza.  Safe to run twice.  The admin role may log in, create databases and roles;
it is not a superuser and is granted none of the pg_*_server_* roles (no programs or files on
the server).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg2
from psycopg2 import sql


def admin_password() -> str | None:
    """PGPASSWORD_ADMIN, else the generated one; None: the role gets no password."""
    if os.environ.get("PGPASSWORD_ADMIN", "").strip():
        return os.environ["PGPASSWORD_ADMIN"].strip()
    try:
        with open(os.environ.get("HOWDAH_CREDENTIALS", ""), encoding="utf-8") as handle:
            stored = json.load(handle)
        password = stored["admin"]["password"]
        return password if isinstance(password, str) and password else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def create_admin(url: str) -> None:
    name = (os.environ.get("PGUSER_ADMIN") or "").strip() or "admin"
    password = admin_password()
    if password is None:
        print("howdah-post-bootstrap: warning: no admin password (PGPASSWORD_ADMIN unset and no generated one): "
              f"role {name} cannot log in with a password", file=sys.stderr)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(sql.SQL(verb + " ROLE {} WITH LOGIN CREATEDB CREATEROLE PASSWORD %s").format(sql.Identifier(name)),
                    (password,))
    conn.close()


def create_stanza() -> None:
    run_dir = os.environ.get("HOWDAH_RUN_DIR", "/run/howdah")
    scope = os.environ.get("SCOPE") or "demo"
    if os.environ.get("WAL_S3_BUCKET") or os.environ.get("PGBACKREST", "").lower() in ("1", "true", "yes", "on"):
        res = subprocess.run(["pgbackrest", f"--config={run_dir}/pgbackrest.conf",
                              f"--stanza={scope}", "stanza-create"])
        if res.returncode != 0:
            # not fatal: failing here would wipe the new cluster, and the backup
            # keeper creates the stanza later anyway
            print(f"howdah-post-bootstrap: warning: stanza-create exited with {res.returncode}; "
                  "the backup keeper will retry", file=sys.stderr)


def main() -> int:
    args = sys.argv[1:]
    if not args or args[-1].startswith("-") or any(a != "--admin" for a in args[:-1]):
        print("usage: howdah-post-bootstrap [--admin] CONNECTION_URL", file=sys.stderr)
        return 2
    if "--admin" in args[:-1]:
        create_admin(args[-1])
    create_stanza()
    return 0


if __name__ == "__main__":
    sys.exit(main())
