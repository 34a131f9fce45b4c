"""The one exception subcommands raise: its message is the whole error output."""
from __future__ import annotations


class CtlError(Exception):
    """A user-facing failure; main() prints `howdahctl: <message>` and exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Aborted(CtlError):
    """The operator said no (or gave no answer) at a confirmation prompt."""

    def __init__(self, message: str = "aborted: nothing changed") -> None:
        super().__init__(message, 1)
