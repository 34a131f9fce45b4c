"""CALLBACK_SCRIPT, the VIP hook and the AWS hook -> ``postgresql.callbacks``.

The agent takes ONE command per callback key, so when any hook is configured every key
(on_start, on_stop, on_restart, on_reload, on_role_change) is set to the dispatcher
(scripts/callback_dispatch.py, ``howdah-callback`` in the image), which runs the user script,
then the VIP hook, then the AWS hook, each with ``<action> <role> <scope>``.  Nothing replaces
CALLBACK_SCRIPT silently: enabling a hook adds to it.

* CALLBACK_SCRIPT: a command (a path, optionally with arguments); it must exist and be
  executable when the container starts, else the entrypoint stops with one line naming it.
* VIP_ADDRESS (``10.0.0.5/24``, or an address with VIP_NETMASK; /32 when neither gives a
  prefix), VIP_INTERFACE (eth0): the VIP hook (needs the NET_ADMIN capability).
* EIP_ALLOCATION (or AWS_EIP_ALLOCATION, ELASTIC_IP), or HOWDAH_AWS_HOOK=true to tag only:
  the AWS hook.
* HOWDAH_CALLBACK_TIMEOUT (30): seconds each hook may run.
"""
from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from typing import Any, Callable

from . import values
from .errors import EnvError
from .values import Env, get

DISPATCH = "/usr/local/bin/howdah-callback"
VIP_HOOK = "/usr/local/bin/howdah-vip-hook"
AWS_HOOK = "/usr/local/bin/howdah-aws-hook"
LOG = "/proc/1/fd/1"  # the container's log (PID 1 is supervisord, the same user)
ACTIONS = ("on_start", "on_stop", "on_restart", "on_reload", "on_role_change")
EIP_VARIABLES = ("EIP_ALLOCATION", "AWS_EIP_ALLOCATION", "ELASTIC_IP")
_IFACE = re.compile(r"^[A-Za-z0-9_.:@\-]{1,15}$")


@dataclass(frozen=True)
class Hooks:
    user: str = ""
    vip: str = ""  # the VIP as address/prefix, "" when off
    vip_interface: str = "eth0"
    aws: bool = False
    timeout: int = 30

    @property
    def enabled(self) -> bool:
        return bool(self.user or self.vip or self.aws)


def is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _user_script(env: Env, executable: Callable[[str], bool]) -> str:
    command = get(env, "CALLBACK_SCRIPT")
    if not command:
        return ""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise EnvError("CALLBACK_SCRIPT", f"cannot split {command!r} into words ({exc})", "fix the quoting") from None
    program = argv[0]
    path = program if os.sep in program else (shutil.which(program) or "")
    if not path or not os.path.exists(path):
        raise EnvError("CALLBACK_SCRIPT", f"{program} does not exist",
                       "mount the script into the container and give its full path")
    if not executable(path):
        raise EnvError("CALLBACK_SCRIPT", f"{path} is not an executable file",
                       "chmod +x it (the agent runs it as the postgres user)")
    return command


def _vip(env: Env) -> str:
    raw = get(env, "VIP_ADDRESS")
    if not raw:
        return ""
    netmask = get(env, "VIP_NETMASK")
    if "/" in raw and netmask:
        raise EnvError("VIP_NETMASK", f"given while VIP_ADDRESS {raw!r} has a prefix already", "set only one of them")
    text = raw if "/" in raw else f"{raw}/{netmask or 32}"
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        variable = "VIP_NETMASK" if netmask and "/" not in raw else "VIP_ADDRESS"
        raise EnvError(variable, f"{text!r} is not an IPv4/IPv6 address with a prefix",
                       "write VIP_ADDRESS as 10.0.0.5/24 (or VIP_NETMASK as 24 or 255.255.255.0)") from None
    return iface.with_prefixlen


def from_env(env: Env, executable: Callable[[str], bool] = is_executable) -> Hooks:
    """Validate the callback variables; raises EnvError naming the first bad one."""
    vip = _vip(env)
    interface = get(env, "VIP_INTERFACE", "eth0")
    if not _IFACE.match(interface):
        raise EnvError("VIP_INTERFACE", f"{interface!r} is not an interface name", "set it to e.g. eth0")
    eip = next((get(env, name) for name in EIP_VARIABLES if get(env, name)), "")
    return Hooks(
        user=_user_script(env, executable),
        vip=vip,
        vip_interface=interface,
        aws=bool(eip) or values.boolean(env, "HOWDAH_AWS_HOOK"),
        timeout=values.integer(env, "HOWDAH_CALLBACK_TIMEOUT", 30, minimum=1),
    )


def command(hooks: Hooks) -> str:
    """The dispatcher command line that runs every configured hook in order."""
    argv = [DISPATCH, "--log", LOG, "--timeout", str(hooks.timeout)]
    if hooks.user:
        argv += ["--run", f"user={hooks.user}"]
    if hooks.vip:
        argv += ["--run", f"vip={VIP_HOOK}"]
    if hooks.aws:
        argv += ["--run", f"aws={AWS_HOOK}"]
    return shlex.join(argv)


def apply(config: dict[str, Any], hooks: Hooks) -> None:
    """Point every callback of the rendered agent config at the dispatcher (when any hook is on)."""
    if not hooks.enabled:
        return
    cmd = command(hooks)
    config.setdefault("postgresql", {})["callbacks"] = {action: cmd for action in ACTIONS}
