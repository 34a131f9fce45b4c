"""Prompts, progress and tables: plain functions over streams, so tests need no terminal."""
from __future__ import annotations

import itertools
import sys
import time
from typing import Any, Callable, Sequence, TextIO, TypeVar

from .errors import Aborted, CtlError

T = TypeVar("T")
YES = ("y", "yes")


def _read(prompt: str, stdin: TextIO, stdout: TextIO) -> str:
    stdout.write(prompt)
    stdout.flush()
    line = stdin.readline()
    if not line:
        stdout.write("\n")
        raise Aborted("aborted: no answer on stdin (add --force to skip the question)")
    return line.strip()


def confirm(question: str, force: bool = False, stdin: TextIO | None = None,
            stdout: TextIO | None = None) -> None:
    """Ask a yes/no question (default no); Aborted unless the answer is yes."""
    if force:
        return
    answer = _read(f"{question} [y/N]: ", stdin or sys.stdin, stdout or sys.stdout)
    if answer.lower() not in YES:
        raise Aborted()


def ask(question: str, default: str = "", stdin: TextIO | None = None,
        stdout: TextIO | None = None) -> str:
    """A free-text question; an empty answer takes the default."""
    shown = f" [{default}]" if default else ""
    return _read(f"{question}{shown}: ", stdin or sys.stdin, stdout or sys.stdout) or default


def typed_confirm(question: str, expected: str, stdin: TextIO | None = None,
                  stdout: TextIO | None = None) -> None:
    """The operator must type `expected` exactly; anything else aborts."""
    answer = _read(f"{question}: ", stdin or sys.stdin, stdout or sys.stdout)
    if answer != expected:
        raise Aborted(f"aborted: expected {expected!r}, got {answer!r}; nothing changed")


class Progress:
    """A spinner rewritten in place on a TTY; on a pipe, one line per new message."""

    FRAMES = "|/-\\"

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self.last = ""
        self.spin = itertools.cycle(self.FRAMES)

    def update(self, message: str) -> None:
        if self.tty:
            elapsed = time.monotonic() - self.started
            self.stream.write(f"\r\033[K{next(self.spin)} {message} ({elapsed:.0f}s)")
            self.stream.flush()
        elif message != self.last:
            self.stream.write(message + "\n")
            self.stream.flush()
        self.last = message

    def done(self, message: str = "") -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()


def wait_for(what: str, check: Callable[[], tuple[T | None, str]], timeout: float,
             progress: Progress, interval: float = 0.5) -> T:
    """Poll check() -> (value, note) until value is truthy; CtlError after timeout.

    The note (what check() saw, e.g. "n2: starting") goes on the progress line."""
    deadline = time.monotonic() + timeout
    note = ""
    while True:
        value, note = check()
        if value:
            progress.done()
            return value
        if time.monotonic() >= deadline:
            progress.done()
            seen = f" (last seen: {note})" if note else ""
            raise CtlError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
        progress.update(f"waiting for {what}" + (f": {note}" if note else ""))
        time.sleep(interval)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A boxed text table; the title, if any, sits in the top border. A cell with newlines
    takes that many lines."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(part) for row in cells for part in row[i].split("\n"))
              for i in range(len(headers))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    top = rule
    if title:
        label = f" {title} "
        top = ("+" + label + "-" * max(len(rule) - len(label) - 2, 0) + "+") \
            if len(label) + 2 <= len(rule) else "+" + label + "+"

    def line(row: list[str]) -> str:
        parts = [c.split("\n") for c in row]
        return "\n".join("| " + " | ".join((p[i] if i < len(p) else "").ljust(w)
                                           for p, w in zip(parts, widths)) + " |"
                         for i in range(max(len(p) for p in parts)))

    out = [top, line(cells[0]), rule] + [line(r) for r in cells[1:]] + [rule]
    return "\n".join(out)
