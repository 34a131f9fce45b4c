"""Credentials the operator did not set: generated once, kept in the volume, printed once.

No password is built into the image.  Every one of PGPASSWORD_SUPERUSER, PGPASSWORD_STANDBY,
PGPASSWORD_ADMIN and the REST API's PATRONI_RESTAPI_USERNAME/PASSWORD that is not set gets a
random value at the first start; it is stored in ``<home>/pgdata/howdah-credentials.json``
(mode 0600, in the data volume, so it survives new containers) and reused at every later
start.  The values are printed once, when they are generated, with the file's path.

Members of one cluster must share the PostgreSQL and REST API credentials: a multi-node
deployment sets them in the environment (docker-compose.yml does).
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import EnvError
from .settings import Settings, User

FILE_NAME = "howdah-credentials.json"
# settings field -> the variable that sets it (named in messages)
ROLES = (("superuser", "PGPASSWORD_SUPERUSER"), ("standby", "PGPASSWORD_STANDBY"),
         ("admin", "PGPASSWORD_ADMIN"), ("restapi", "PATRONI_RESTAPI_PASSWORD"))


def path(s: Settings) -> Path:
    return Path(s.home) / "pgdata" / FILE_NAME


def new_password() -> str:
    return secrets.token_urlsafe(24)  # 192 bits, [A-Za-z0-9_-]: safe in every config format


def read(file: Path) -> dict[str, Any]:
    """The stored credentials ({} when the file does not exist)."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise EnvError("HOME_DIR", f"cannot read {file} ({exc.strerror})",
                       "make the data volume readable by the postgres user, or set the PGPASSWORD_* variables") from None
    try:
        stored = json.loads(text)
    except ValueError:
        stored = None
    if not isinstance(stored, dict):
        raise EnvError("HOME_DIR", f"{file} is not the JSON object Howdah wrote",
                       "restore it from a backup, or delete it and set the PGPASSWORD_* variables to the passwords in use")
    return stored


def write(file: Path, stored: dict[str, Any]) -> None:
    """Atomically, mode 0600 from the start (never readable by others, even briefly)."""
    temp = file.with_name(f".{file.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(stored, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, file)


def stand_ins(s: Settings) -> Settings:
    """Settings with a stand-in for every password still to generate (to validate renders)."""
    changes = {field: dataclasses.replace(getattr(s, field), password="to-be-generated")
               for field, _variable in ROLES if getattr(s, field).defaulted}
    return dataclasses.replace(s, **changes) if changes else s


def resolve(s: Settings, say: Callable[[str], None] | None = None) -> Settings:
    """Settings with every unset credential filled from the volume (generated when missing)."""
    missing = [(field, variable) for field, variable in ROLES if getattr(s, field).defaulted]
    if not missing:
        return s
    file = path(s)
    stored = read(file)
    generated: list[tuple[str, str, str]] = []
    changes: dict[str, User] = {}
    for field, variable in missing:
        user: User = getattr(s, field)
        entry = stored.get(field)
        if not (isinstance(entry, dict) and isinstance(entry.get("password"), str) and entry["password"]):
            entry = {"username": user.name, "password": new_password()}
            stored[field] = entry
            generated.append((variable, user.name, entry["password"]))
        name = str(entry.get("username") or user.name) if field == "restapi" else user.name
        changes[field] = dataclasses.replace(user, name=name, password=entry["password"])
    if generated:
        file.parent.mkdir(parents=True, exist_ok=True)
        write(file, stored)
        report = say or (lambda line: print(line, file=sys.stderr, flush=True))
        report(f"howdah-entrypoint: generated credentials (printed only this once), stored in {file} (mode 0600):")
        for variable, name, password in generated:
            report(f"howdah-entrypoint:   {variable}: user {name} password {password}")
        report("howdah-entrypoint: members of one cluster need the same credentials: set these variables "
               "for a multi-node cluster (see README.md, Security)")
    return dataclasses.replace(s, **changes)  # type: ignore[arg-type]
