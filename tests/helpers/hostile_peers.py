"""Providers that misbehave the way real ones do, on raw loopback sockets: they trickle
their answer a byte at a time, stall mid-conversation, or accept and say nothing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

Script = Callable[[socket.socket, "HostilePeer"], None]


class HostilePeer:
    """A TCP server on a free loopback port running script(conn, peer) per connection
    in its own thread; stops (closing every connection) whatever happens."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.keys: Counter[str] = Counter()  # requests per Idempotency-Key (HTTP)
        self.rcpts: list[str] = []  # RCPT TO arguments (SMTP)
        self.messages = 0  # DATA ends seen (SMTP)
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/reminders"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client gave up: what these peers are for
            self.script(conn, self)

    def trickle(self, conn: socket.socket, data: bytes, every_s: float = 1.0) -> None:
        """data one byte every every_s seconds, until done or stopped."""
        for i in range(len(data)):
            if self.stop.wait(every_s if i else 0):
                return
            conn.sendall(data[i : i + 1])

    def __enter__(self) -> HostilePeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for conn in self.conns:
            conn.close()


def read_http_request(conn: socket.socket, peer: HostilePeer) -> None:
    """Read one request (headers and Content-Length body); count its Idempotency-Key."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionResetError
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", 0)):
        body += conn.recv(65536)
    peer.keys[headers.get("idempotency-key", "")] += 1


def smtp_until(conn: socket.socket, peer: HostilePeer, stall_at: bytes | None) -> None:
    """A plain SMTP server that goes silent once a client command starts with stall_at
    (b"DATA-END": after the message's final dot)."""
    conn.sendall(b"220 hostile ESMTP\r\n")
    file = conn.makefile("rb")
    in_data = False
    while line := file.readline():
        if in_data:
            if line == b".\r\n":
                in_data = False
                peer.messages += 1
                if stall_at == b"DATA-END":
                    peer.stop.wait(60)
                    return
                conn.sendall(b"250 queued\r\n")
            continue
        if stall_at and line.upper().startswith(stall_at):
            peer.stop.wait(60)
            return
        verb = line[:4].upper()
        if verb == b"RCPT":
            peer.rcpts.append(line[8:].strip().decode())
        if verb == b"QUIT":
            conn.sendall(b"221 bye\r\n")
            return
        if verb == b"DATA":
            in_data = True
            conn.sendall(b"354 go ahead\r\n")
        elif verb == b"EHLO":
            conn.sendall(b"250-hostile\r\n250 8BITMIME\r\n")
        else:
            conn.sendall(b"250 ok\r\n")


def elapsed(fn: Callable[[], object]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started
