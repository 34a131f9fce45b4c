"""PostgreSQL parameters as the installed server accepts them.

A Patroni config written for one major carries names another major renamed
or removed (``wal_keep_segments`` is ``wal_keep_size`` from 13 on); written
as is, postgres refuses to start.  Before postgresql.conf is written:

* renamed parameters are translated for the running major (with a unit
  conversion where the rename changed it), an explicit new name winning;
* names the installed server does not know are left out with a WARNING;
  the server is asked (``postgres --describe-config``, then ``postgres -C``
  for names that listing hides), not a list of ours; names with a dot
  (extension GUCs) are kept, as the server defers them to the extension;
* a name that is not a plain GUC identifier never reaches the file: it
  would let a name such as ``a = 1\\nb`` write lines of its own.
"""
from __future__ import annotations

import functools
import logging
import os
import pwd
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from howdah.core.settings import valid_name

log = logging.getLogger(__name__)

WAL_SEGMENT_MB = 16  # the default segment size; the value only has to be close


def _segments_to_size(value: Any) -> str | None:
    try:
        segments = int(str(value).strip())
    except ValueError:
        return None
    return f"{segments * WAL_SEGMENT_MB}MB"


def _same(value: Any) -> Any:
    return value


# old name -> (new name, first major with the new name, value conversion)
RENAMED: Mapping[str, tuple[str, int, Callable[[Any], Any]]] = {
    "wal_keep_segments": ("wal_keep_size", 13, _segments_to_size),
    "force_parallel_mode": ("debug_parallel_query", 16, _same),
    "ssl_ecdh_curve": ("ssl_groups", 18, _same),
}


@functools.lru_cache(maxsize=8)
def _major(postgres: str, stamp: float) -> int | None:
    try:
        out = subprocess.run([postgres, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s*(\d+)", out)
    return int(match.group(1)) if match else None


def server_major(bin_dir: Path) -> int | None:
    """The major of `bin_dir/postgres` (15, 17, ...), None when it cannot be run."""
    exe = bin_dir / "postgres"
    try:
        stamp = exe.stat().st_mtime
    except OSError:
        return None
    return _major(str(exe), stamp)


class ServerGucs:
    """Which parameter names the postgres binary in bin_dir accepts."""

    def __init__(self, bin_dir: Path) -> None:
        self.exe = str(bin_dir / "postgres")
        self._listed: set[str] | None = None
        self._asked: dict[str, bool] = {}

    def _describe(self) -> set[str] | None:
        try:
            res = subprocess.run([self.exe, "--describe-config"], capture_output=True,
                                 text=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        if res.returncode != 0:
            return None
        return {line.split("\t", 1)[0].lower() for line in res.stdout.splitlines() if line}

    def _ask(self, name: str) -> bool:
        """`postgres -C name` on an empty config: developer options (hidden
        from --describe-config) and aliases answer; unknown names fail."""
        user: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="howdah-guc-") as tmp:
            Path(tmp, "postgresql.conf").touch()
            if os.geteuid() == 0:  # postgres refuses root (tools and tests run as root)
                try:
                    owner = pwd.getpwnam("postgres")
                except KeyError:
                    return True
                os.chown(tmp, owner.pw_uid, owner.pw_gid)
                user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
            try:
                res = subprocess.run([self.exe, "-D", tmp, "-C", name], capture_output=True,
                                     text=True, timeout=60, stdin=subprocess.DEVNULL, **user)
            except (OSError, subprocess.SubprocessError):
                return True  # cannot tell: leave it to the server
        if res.returncode == 0:
            return True
        return "unrecognized configuration parameter" not in res.stderr

    def accepts(self, name: str) -> bool:
        if self._listed is None:
            self._listed = self._describe() or set()
        if not self._listed:
            return True  # the binary cannot be asked: keep what was given
        key = name.lower()
        if key in self._listed:
            return True
        if key not in self._asked:
            self._asked[key] = self._ask(key)
        return self._asked[key]


def for_server(parameters: Mapping[str, Any], major: int | None,
               accepts: Callable[[str], bool],
               warn: Callable[[str], None] = log.warning) -> dict[str, Any]:
    """The parameters to write for a server of `major` (None: unknown, no renames)."""
    out: dict[str, Any] = {}
    given = {str(k).lower() for k in parameters}
    for name, value in parameters.items():
        if not valid_name(name):
            warn(f"postgresql.parameters: {name!r} is not a parameter name (letters, digits, "
                 "_ and . only): left out of postgresql.conf")
            continue
        rename = RENAMED.get(name.lower())
        if rename is not None and major is not None and major >= rename[1]:
            new, _, convert = rename
            if new in given:
                warn(f"postgresql.parameters: {name} is {new} since PostgreSQL {rename[1]} and "
                     f"{new} is set too: {name} left out")
                continue
            converted = convert(value)
            if converted is None:
                warn(f"postgresql.parameters: {name}={value!r} cannot be turned into {new}: "
                     "left out")
                continue
            warn(f"postgresql.parameters: {name}={value} is {new}={converted} on PostgreSQL "
                 f"{major}: using {new}")
            out[new] = converted
            continue
        if name == "wal_level" and str(value).lower() == "hot_standby":
            value = "replica"  # the old name of the level, refused since 9.6
        if "." not in name and not accepts(name):  # dotted: an extension's parameter
            warn(f"postgresql.parameters: {name}={value!r} is not a parameter of PostgreSQL "
                 f"{major or '(unknown major)'}: left out of postgresql.conf")
            continue
        out[name] = value
    return out


class ServerParameters:
    """for_server() bound to one bin_dir, warning once per message."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.gucs = ServerGucs(bin_dir)
        self._warned: set[str] = set()

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    def __call__(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        return for_server(parameters, server_major(self.bin_dir), self.gucs.accepts, self._warn)
