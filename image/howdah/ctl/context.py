"""What every subcommand gets: the config, DCS and REST clients, and the terminal."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TextIO

from .api import ApiClient
from .config import CtlConfig, load_ctl_config
from .dcs import CtlDcs
from .ui import Progress


@dataclass
class Ctx:
    config: CtlConfig
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _dcs: CtlDcs | None = None
    _api: ApiClient | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Ctx":
        return cls(load_ctl_config(args.config_file))

    @property
    def scope(self) -> str:
        return self.config.scope

    def dcs(self, scope: str | None = None) -> CtlDcs:
        if scope is not None and scope != self.config.scope:
            return CtlDcs(self.config, scope)
        if self._dcs is None:
            self._dcs = CtlDcs(self.config, self.config.scope)
        return self._dcs

    @property
    def api(self) -> ApiClient:
        if self._api is None:
            self._api = ApiClient(self.config)
        return self._api

    def progress(self) -> Progress:
        return Progress(self.stderr)

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()
