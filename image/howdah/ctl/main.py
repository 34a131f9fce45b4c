"""howdahctl entry point: argument parsing, dispatch, and one-line errors."""
from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType
from typing import NoReturn, Sequence

from . import dsn, edit_config, failover, history, listing, pause, query  # noqa: I001
from . import backup, reinit, reload, remove, restart, show_config, switchover
from .context import Ctx
from .errors import CtlError

COMMANDS: tuple[ModuleType, ...] = (listing, switchover, failover, restart, reload, reinit,
                                    edit_config, show_config, pause, history, dsn, query, remove, backup)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise CtlError(f"{self.prog}: {message} (see --help)", 2)


def build_parser() -> Parser:
    parser = Parser(prog="howdahctl", description="Operate a Howdah (or Patroni) cluster.")
    parser.add_argument("-c", "--config-file", metavar="FILE",
                        help="agent YAML (default: $HOWDAH_CONFIG, $PATRONICTL_CONFIG_FILE, "
                             "$PATRONI_CONFIGURATION_FILE, ~/.config/patroni/patronictl.yaml, "
                             "/run/howdah/howdah.yml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    args = build_parser().parse_args(list(argv))
    if not getattr(args, "run", None):
        raise CtlError("howdahctl: a command is required (see --help)", 2)
    return args


def dispatch(argv: Sequence[str], ctx: Ctx | None = None) -> int:
    args = parse(argv)
    ctx = ctx or Ctx.from_args(args)
    code: int = args.run(ctx, args)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return dispatch(argv)
    except CtlError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"howdahctl: {exc}\n" if not str(exc).startswith("howdahctl")
                         else f"{exc}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("\nhowdahctl: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        if os.environ.get("HOWDAHCTL_DEBUG"):
            raise
        first = (str(exc).splitlines() or [""])[0]
        sys.stderr.write(f"howdahctl: unexpected error: {type(exc).__name__}: {first} "
                         "(HOWDAHCTL_DEBUG=1 shows the traceback)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
