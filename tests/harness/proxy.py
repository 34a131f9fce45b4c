"""A TCP forwarder on 127.0.0.1 that a test can cut, to stand for a network path.

A node that advertises a proxy's port (its connect_address, or the etcd host
it is given) is reached through it, so the test can break that path without
touching the node:

- ``refuse()``: like an iptables REJECT with tcp-reset (or a reused IP,
  kube-proxy without endpoints): live connections are reset and new ones are
  refused, while the node itself stays up and reachable on its real port;
- ``drop()``: like a DROP rule: nothing is forwarded any more in either
  direction, live and new connections hang (until heal(): then bytes flow again);
- ``heal()``: forward again.
"""
from __future__ import annotations

import select
import socket
import struct
import threading


class TcpProxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.listen_port, self.target_port = host, listen_port, target_port
        self.mode = "closed"  # forward | refuse | drop | closed
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()

    # --- control --------------------------------------------------------
    def start(self) -> "TcpProxy":
        self.heal()
        return self

    def heal(self) -> None:
        with self._lock:
            self.mode = "forward"
            if self._listener is None:
                self._listen()

    def refuse(self) -> None:
        """Reset every live connection and stop listening (connects get ECONNREFUSED)."""
        with self._lock:
            self.mode = "refuse"
            self._close_listener()
            for sock in list(self._conns):
                _reset(sock)
            self._conns.clear()

    def drop(self) -> None:
        """Blackhole: keep every socket open but move no byte."""
        with self._lock:
            self.mode = "drop"
            if self._listener is None:
                self._listen()

    def close(self) -> None:
        with self._lock:
            self.mode = "closed"
            self._close_listener()
            for sock in list(self._conns):
                _reset(sock)
            self._conns.clear()

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.listen_port))
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True,
                         name=f"proxy-{self.listen_port}").start()

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self.mode not in ("forward", "drop"):
                    _reset(client)
                    continue
            # while dropping, the connection is set up but moves no byte until
            # heal(): the client sees a hang, then a working connection
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        try:
            while True:
                if self.mode == "drop":
                    select.select([], [], [], 0.1)
                    continue
                if self.mode != "forward":
                    return
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    if self.mode != "forward":
                        break  # a cut in between: the bytes are lost, as on the wire
                    peer[src].sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                for sock in (a, b):
                    self._conns.discard(sock)
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, as from a REJECT rule."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
