"""Howdah: a PostgreSQL HA agent that honours the Patroni contract."""

__version__ = "0.1.0"

# The version published in member JSON and GET /patroni.  Patroni's tools
# switch behaviour on it (role names, API paths), so it must read as a modern
# Patroni release; Howdah's own version travels beside it.
COMPAT_VERSION = "4.1.5"
