#!/usr/bin/python3
"""howdah-vip-hook ACTION ROLE SCOPE: a floating IP address that follows the primary.

Becoming primary (or standby leader) adds VIP_ADDRESS to VIP_INTERFACE (``ip addr add``) and
announces it with gratuitous ARP (``arping -U``), so neighbours switch their ARP entry at once;
any other role, and on_stop, removes it.  Both are idempotent.

  VIP_ADDRESS    10.0.0.5/24, or an address with VIP_NETMASK (prefix length or dotted); /32 default
  VIP_INTERFACE  default eth0
  HOWDAH_VIP_IP, HOWDAH_VIP_ARPING  the ip and arping programs (tests point them elsewhere)

Changing addresses needs the NET_ADMIN capability.  The container runs as the postgres user,
so the image carries a helper with the file capability cap_net_admin
(/usr/local/lib/howdah/netadmin, image/netadmin/netadmin.c) that runs only ``ip addr add|del``
of the container's own VIP_ADDRESS on its VIP_INTERFACE; it can only run when the container was
given the capability (compose: ``cap_add: [NET_ADMIN]``), and this hook says so in one line when not.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import subprocess
import sys
from typing import Mapping, Sequence

from howdah.agent.callbacks import still_leader

PROG = "howdah-vip-hook"
NETADMIN = "/usr/local/lib/howdah/netadmin"  # image/netadmin/netadmin.c, file capability cap_net_admin
LEADER_ROLES = ("primary", "standby_leader")
NEEDS_CAP = ("the container needs the NET_ADMIN capability: add cap_add: [NET_ADMIN] to its compose "
             "service (docker run --cap-add NET_ADMIN)")


class NoCapability(Exception):
    pass


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def vip(env: Mapping[str, str]) -> tuple[str, str]:
    """(address/prefix, interface) from the environment; ValueError with a sentence when bad."""
    raw = env.get("VIP_ADDRESS", "").strip()
    if not raw:
        raise ValueError("VIP_ADDRESS is not set")
    netmask = env.get("VIP_NETMASK", "").strip()
    text = raw if "/" in raw else f"{raw}/{netmask or 32}"
    try:
        address = ipaddress.ip_interface(text).with_prefixlen
    except ValueError:
        raise ValueError(f"VIP_ADDRESS/VIP_NETMASK {text!r} is not an address with a prefix") from None
    return address, env.get("VIP_INTERFACE", "").strip() or "eth0"


def ip_program(env: Mapping[str, str]) -> list[str]:
    configured = env.get("HOWDAH_VIP_IP", "").strip()
    if configured:
        return [configured]
    if os.geteuid() != 0 and os.access(NETADMIN, os.X_OK):
        # runs `ip addr add|del <the VIP> dev <its interface>` with CAP_NET_ADMIN, nothing else
        return [NETADMIN]
    return ["ip"]


def ip(env: Mapping[str, str], *args: str) -> tuple[int, str]:
    argv = [*ip_program(env), *args]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    except PermissionError as exc:
        # exec of the cap_net_admin helper fails with EPERM when the container lacks NET_ADMIN
        if exc.errno == errno.EPERM:
            raise NoCapability() from None
        raise
    output = (done.stderr + done.stdout).strip()
    if done.returncode != 0 and "Operation not permitted" in output:
        raise NoCapability()
    return done.returncode, output


def add(env: Mapping[str, str], address: str, interface: str) -> int:
    code, output = ip(env, "addr", "add", address, "dev", interface)
    if code != 0 and not any(m in output for m in ("File exists", "already assigned")):
        say(f"ip addr add {address} dev {interface} failed: {output}")
        return 1
    say(f"{address} {'is already' if code else 'added'} on {interface}")
    announce(env, address.split("/")[0], interface)
    return 0


def announce(env: Mapping[str, str], host: str, interface: str) -> None:
    if ":" in host:
        return  # IPv6: the kernel sends unsolicited neighbour advertisements itself
    argv = [env.get("HOWDAH_VIP_ARPING", "").strip() or "arping", "-U", "-c", "3", "-I", interface, host]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"gratuitous ARP for {host} not sent ({exc}); neighbours learn the address when their entry expires")
        return
    if done.returncode not in (0, 1):  # iputils arping exits 1 when nobody replied, which -U expects
        say(f"arping -U {host} on {interface} failed: {(done.stderr or done.stdout).strip()}")
    else:
        say(f"announced {host} on {interface} (gratuitous ARP)")


def remove(env: Mapping[str, str], address: str, interface: str) -> int:
    code, output = ip(env, "addr", "del", address, "dev", interface)
    if code == 0:
        say(f"{address} removed from {interface}")
    elif any(m in output for m in ("Cannot assign requested address", "Address not found", "does not exist")):
        say(f"{address} is not on {interface}")
    else:
        say(f"ip addr del {address} dev {interface} failed: {output}")
        return 1
    return 0


def run(action: str, role: str, scope: str, env: Mapping[str, str]) -> int:
    try:
        address, interface = vip(env)
    except ValueError as exc:
        say(str(exc))
        return 2
    want = role in LEADER_ROLES and action != "on_stop"
    if want:
        reason = still_leader(env, role)
        if reason is not None:
            say(f"not adding {address}: {reason}")
            return 4
    try:
        return add(env, address, interface) if want else remove(env, address, interface)
    except NoCapability:
        verb = "add" if want else "remove"
        say(f"cannot {verb} VIP {address} on {interface}: Operation not permitted; {NEEDS_CAP}")
        return 3
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"{scope} {action} {role}: cannot run ip: {exc}")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        say("usage: howdah-vip-hook ACTION ROLE SCOPE")
        return 2
    return run(args[0], args[1], args[2], os.environ)


if __name__ == "__main__":
    sys.exit(main())
