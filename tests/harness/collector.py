"""A server that poses as a PostgreSQL member to collect passwords: it refuses TLS and GSS,
asks every client for a cleartext password (libpq then sends whatever it has for that server)
and records it.  The attacker of tests/local/test_pgpass_scope.py and
test_replication_verifies_server.py."""
from __future__ import annotations

import socket
import struct
import threading


class PasswordCollector:
    """Listens on 127.0.0.2; every client is asked for a cleartext password, which is kept."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.2", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.got: list[tuple[str, str]] = []  # (user, password)
        self.users: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"postgres://127.0.0.2:{self.port}/postgres"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            while True:
                length, code = struct.unpack("!II", self._read(conn, 8))
                body = self._read(conn, length - 8)
                if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: no
                    conn.sendall(b"N")
                    continue
                break
            fields = body.split(b"\0")
            params = dict(zip(fields[0::2], fields[1::2]))
            user = params.get(b"user", b"").decode()
            self.users.append(user)
            conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
            kind = self._read(conn, 1)
            size = struct.unpack("!I", self._read(conn, 4))[0]
            password = self._read(conn, size - 4).rstrip(b"\0").decode(errors="replace")
            if kind == b"p":
                self.got.append((user, password))
            error = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
            conn.sendall(b"E" + struct.pack("!I", len(error) + 4) + error)
        except (OSError, EOFError, struct.error):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()
