"""etcd found through DNS SRV records: Patroni's `srv` (and `srv_suffix`) of an etcd section,
Spilo's ETCD_DISCOVERY_DOMAIN / ETCD3_DISCOVERY_DOMAIN.

`_etcd-client-ssl<suffix>._tcp.<domain>` (https), else `_etcd-client<suffix>._tcp.<domain>`
(http), as etcd's own discovery names them; targets ordered by priority, then weight.  The
backends look the records up when they start and again whenever no host they know answers
(at most every RETRY_AFTER seconds), so etcd members replaced behind the domain are found
without a restart and a DNS failure at start is not fatal.

A small stub resolver over UDP (the name servers of /etc/resolv.conf, or HOWDAH_DNS_SERVERS
as host:port,...), standard library only: dnspython would cost the agent several MB of
memory (see _nodns.py).  An answer cut short (TC) is used as far as it goes.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import struct
from typing import Callable, Sequence

from howdah.dcs.endpoints import hosts_desc

RECORDS = (("https", "_etcd-client-ssl"), ("http", "_etcd-client"))
log = logging.getLogger(__name__)
RETRY_AFTER = 5.0
SRV, IN = 33, 1

Lookup = Callable[[str], list[tuple[str, int]]]


class SrvError(Exception):
    """No name server answered."""


def nameservers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """HOWDAH_DNS_SERVERS (host:port,...) when set, else the name servers of resolv.conf."""
    servers: list[tuple[str, int]] = []
    for item in filter(None, os.environ.get("HOWDAH_DNS_SERVERS", "").split(",")):
        host, _, port = item.strip().rpartition(":")
        servers.append((host.strip("[]"), int(port)) if host and port.isdigit() else (item.strip(), 53))
    if servers:
        return servers
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    servers.append((parts[1], 53))
    except OSError:
        pass
    return servers or [("127.0.0.1", 53)]


def _encode(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not raw or len(raw) > 63:
            raise ValueError(f"{name!r} is not a DNS name")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def _name(data: bytes, pos: int) -> tuple[str, int]:
    """The (possibly compressed) name at pos, and the position after it."""
    labels: list[str] = []
    end = None
    for _ in range(128):
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        pos += 1
        if length == 0:
            return ".".join(labels), end if end is not None else pos
        labels.append(data[pos:pos + length].decode("ascii", "replace"))
        pos += length
    raise ValueError("DNS name loop")


def parse_srv(data: bytes, ident: int) -> list[tuple[int, int, str, int]] | None:
    """(priority, weight, target, port) records of an answer; None when it is not ours."""
    if len(data) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    if rid != ident or not flags & 0x8000:
        return None
    rcode = flags & 0xF
    if rcode == 3:  # NXDOMAIN
        return []
    if rcode != 0:
        raise SrvError(f"name server answered rcode {rcode}")
    pos = 12
    for _ in range(qd):
        _, pos = _name(data, pos)
        pos += 4
    records = []
    for _ in range(an):
        _, pos = _name(data, pos)
        rtype, _, _, length = struct.unpack("!HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == SRV:
            priority, weight, port = struct.unpack("!HHH", data[pos:pos + 6])
            target, _ = _name(data, pos + 6)
            records.append((priority, weight, target, port))
        pos += length
    return records


def query(name: str, servers: list[tuple[str, int]] | None = None,
          timeout: float = 2.0) -> list[tuple[str, int]]:
    """[(target, port)] of the SRV records of `name`, by priority then weight; [] when there
    are none; SrvError when no name server answers."""
    ident = random.randrange(1 << 16)
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + _encode(name) + struct.pack("!HH", SRV, IN)
    last: Exception | None = None
    for host, port in servers or nameservers():
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.sendto(packet, (host, port))
                for _ in range(8):
                    data, _ = sock.recvfrom(65535)
                    records = parse_srv(data, ident)
                    if records is not None:
                        records.sort(key=lambda r: (r[0], -r[1]))
                        return [(target.rstrip("."), p) for _, _, target, p in records]
        except (OSError, ValueError, IndexError, struct.error, SrvError) as exc:
            last = exc
    raise SrvError(f"no name server answered for {name}: {last}")


def discover(domain: str, suffix: str = "", lookup: Lookup | None = None) -> tuple[str, list[tuple[str, int]]]:
    """(protocol, hosts) from the first record kind that exists; (http, []) when none."""
    lookup = lookup or query
    domain = domain.rstrip(".")
    for protocol, record in RECORDS:
        hosts = lookup(f"{record}{suffix}._tcp.{domain}")
        if hosts:
            return protocol, hosts
    return "http", []


def names(domain: str, suffix: str = "") -> str:
    return " or ".join(f"{record}{suffix}._tcp.{domain.rstrip('.')}" for _, record in RECORDS)


def lookup_again(domain: str, suffix: str,
                 known: Sequence[tuple[str, int]]) -> tuple[str, list[tuple[str, int]]] | None:
    """One more lookup of `domain`'s records for a backend that knows `known`: (protocol,
    hosts) when they list other hosts; None when nothing changed, or when the lookup failed or
    found no record (logged: the backend keeps the hosts it knows)."""
    try:
        protocol, hosts = discover(domain, suffix)
    except SrvError as exc:
        log.warning("etcd: SRV lookup for %s failed: %s", domain, exc)
        return None
    if not hosts:
        log.warning("etcd: DNS has no SRV record %s", names(domain, suffix))
        return None
    if list(hosts) == list(known):
        return None
    if known:
        log.info("etcd: the SRV records of %s now list %s", domain, hosts_desc(hosts))
    return protocol, list(hosts)
