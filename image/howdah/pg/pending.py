"""Which restart-only parameters wait for a restart, and with what values.

Published as ``pending_restart_reason`` beside ``pending_restart`` (GET /patroni, the member
key, ``howdahctl list``), shaped as Patroni 4.1.5 shapes it: ``{name: {"old_value": ...,
"new_value": ...}}``, the old value as the server shows it (``current_setting``), the new one
as the configuration files set it, both with the greatest unit that states the value exactly
('24MB', not '3072' 8kB pages)."""
from __future__ import annotations

import re
from typing import Any, Iterable

# unit -> size in the smallest unit of its kind (bytes, microseconds)
_MEMORY = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
_TIME = {"us": 1, "ms": 1000, "s": 1000 ** 2, "min": 60 * 1000 ** 2, "h": 3600 * 1000 ** 2,
         "d": 86400 * 1000 ** 2}
_BOOL = {"on": "on", "true": "on", "yes": "on", "1": "on",
         "off": "off", "false": "off", "no": "off", "0": "off"}
_VALUE = re.compile(r"\s*(-?\d+)\s*([A-Za-z]*)\s*$")

# the SQL the status query runs for the rows (name, shown value, unit, vartype, file value
# or NULL when no file sets it, boot value) of the parameters waiting for a restart; the file
# line of such a parameter reads "setting could not be applied" in pg_file_settings.error
ROWS_SQL = """(SELECT json_agg(json_build_array(s.name, current_setting(s.name), s.unit, s.vartype,
                      (SELECT f.setting FROM pg_file_settings f
                        WHERE f.name = s.name
                        ORDER BY f.seqno DESC LIMIT 1),
                      s.boot_val) ORDER BY s.name)
    FROM pg_settings s WHERE s.pending_restart)"""


def _base(unit: str | None) -> tuple[int, dict[str, int]] | None:
    """A GUC's unit column ('8kB', 'ms', ...) as (factor in the smallest unit, its table)."""
    m = re.fullmatch(r"(\d*)([A-Za-z]+)", unit or "")
    if not m:
        return None
    mult = int(m.group(1) or 1)
    for table in (_MEMORY, _TIME):
        if m.group(2) in table:
            return mult * table[m.group(2)], table
    return None


def _format(value: str, unit: str | None, vartype: str | None) -> str:
    """A value in the file's or the catalogue's spelling, in the greatest exact unit."""
    if vartype == "bool":
        return _BOOL.get(value.strip().lower(), value)
    if vartype == "enum":
        return value.strip().lower()
    base = _base(unit)
    m = _VALUE.match(value)
    if vartype != "integer" or base is None or m is None:
        return value
    factor, table = base
    number = int(m.group(1))
    if m.group(2):
        if m.group(2) not in table:
            return value
        small = number * table[m.group(2)]
        if small % factor:
            return value  # not a whole number of the server's units: as written
        number = small // factor
    if number == 0:
        return "0"
    small = number * factor
    name = max((u for u, size in table.items() if small % size == 0 and size >= 1),
               key=lambda u: table[u])
    return f"{small // table[name]}{name}"


def reason(rows: Iterable[Any] | None) -> dict[str, dict[str, str]]:
    """The rows of ROWS_SQL as Patroni's ``pending_restart_reason``."""
    out: dict[str, dict[str, str]] = {}
    for name, shown, unit, vartype, in_file, boot in rows or ():
        new = _format(str(in_file), unit, vartype) if in_file is not None else \
            _format(str(boot), unit, vartype) if boot is not None else "?"
        out[str(name)] = {"old_value": "" if shown is None else str(shown), "new_value": new}
    return out
