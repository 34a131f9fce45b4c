"""Which PostgreSQL major a node runs: the data directory's PG_VERSION first (as Spilo does),
then PGVERSION, then the image's default; a major whose binaries the image lacks stops the
start with one line and leaves the data untouched."""
from __future__ import annotations

import os
from typing import Callable

from .errors import EnvError

DEFAULT_MAJOR = "17"
LIB = "/usr/lib/postgresql"


def installed_majors(lib: str = LIB) -> tuple[str, ...]:
    """Majors with a server binary in the image, newest last."""
    try:
        names = os.listdir(lib)
    except OSError:
        return ()
    found = [n for n in names if n.isdigit() and os.path.isfile(os.path.join(lib, n, "bin", "postgres"))]
    return tuple(sorted(found, key=int))


def data_major(pgdata: str) -> str | None:
    """The major recorded in PGDATA/PG_VERSION, None for an empty or new data directory."""
    try:
        with open(os.path.join(pgdata, "PG_VERSION"), encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def choose(requested: str, pgdata: str, majors: tuple[str, ...],
           read_data_major: Callable[[str], str | None]) -> str:
    """The major to run; raises EnvError naming the variable and the fix."""
    if requested and not requested.isdigit():
        raise EnvError("PGVERSION", f"{requested!r} is not a major version number",
                       f"set it to {majors[-1] if majors else DEFAULT_MAJOR}")
    on_disk = read_data_major(pgdata)
    if on_disk is not None and not on_disk.isdigit():
        raise EnvError("PGDATA", f"{pgdata}/PG_VERSION holds {on_disk!r}, not a PostgreSQL major",
                       "point PGDATA at a PostgreSQL data directory")
    major = on_disk or requested or (majors[-1] if majors else DEFAULT_MAJOR)
    if majors and major not in majors:
        have = ", ".join(majors)
        if on_disk:
            raise EnvError("PGDATA", f"{pgdata} holds PostgreSQL {on_disk} data but this image runs "
                           f"PostgreSQL {have} (the data was not touched)",
                           f"run it with an image that has PostgreSQL {on_disk}, or move it to {majors[-1]} "
                           "by cloning it into a new cluster (README: PostgreSQL versions)")
        raise EnvError("PGVERSION", f"PostgreSQL {major} is not in this image (it has {have})",
                       f"set PGVERSION to {majors[-1]} or leave it unset")
    return major
