"""A STAND-IN DNS server on 127.0.0.1 (UDP), for tests only: it answers SRV questions from
a dict the test may change while it runs (name -> [(priority, weight, port, target)]), and
NXDOMAIN for any other name. Answers use name compression (the question's name is pointed
to), as real servers do."""
from __future__ import annotations

import socket
import struct
import threading


def _encode(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


class DnsStandIn:
    def __init__(self) -> None:
        self.records: dict[str, list[tuple[int, int, int, str]]] = {}
        self.questions: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = False

    @property
    def address(self) -> str:
        """For HOWDAH_DNS_SERVERS (howdah/dcs/srv.py)."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "DnsStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(data), peer)
            except (OSError, ValueError, IndexError, struct.error):
                continue

    def _answer(self, data: bytes) -> bytes:
        ident, _, _, _, _, _ = struct.unpack("!HHHHHH", data[:12])
        pos, labels = 12, []
        while data[pos]:
            labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
            pos += 1 + data[pos]
        question = data[12:pos + 5]
        name = ".".join(labels)
        self.questions.append(name)
        records = self.records.get(name)
        if records is None:
            return struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        answers = b""
        for priority, weight, port, target in records:
            rdata = struct.pack("!HHH", priority, weight, port) + _encode(target)
            answers += struct.pack("!HHHIH", 0xC00C, 33, 1, 30, len(rdata)) + rdata
        return struct.pack("!HHHHHH", ident, 0x8180, 1, len(records), 0, 0) + question + answers
