"""A TCP proxy on a free loopback port that can turn into a black hole.

Forwarding at first; after black_hole() it keeps every connection open and reads
what arrives, but forwards nothing (both directions) or nothing from the server
to the client (server_to_client): a hung pooler, middlebox or NAT, or a frozen
peer. It closes no socket the other side still has open, and new connections
are accepted and then ignored, so a client learns nothing from TCP itself.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Literal

from psycopg.conninfo import conninfo_to_dict, make_conninfo

Mode = Literal["forward", "both", "server_to_client"]


class BlackHoleProxy:
    """To a server at host:port, or on a Unix socket when host is a directory (the
    embedded server's): the client side is TCP either way."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        # socket -> (its peer or None, True when it is the client's side)
        self._peers: dict[socket.socket, tuple[socket.socket | None, bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="blackhole-proxy", daemon=True)
        self._thread.start()

    def black_hole(self, mode: Mode = "both") -> None:
        self.mode = mode

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in [self._listener, *self._peers]:
            sock.close()

    def __enter__(self) -> BlackHoleProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj in self._peers:  # not closed earlier in this round
                    self._relay(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        server = None
        if self.mode == "forward":
            server = self._connect_upstream()
            self._add(server, client, client_side=False)
        self._add(client, server, client_side=True)

    def _connect_upstream(self) -> socket.socket:
        host, port = self.target
        if host.startswith("/"):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(f"{host}/.s.PGSQL.{port}")
            return server
        server = socket.create_connection(self.target, timeout=5)
        server.settimeout(None)
        return server

    @classmethod
    def to(cls, url: str) -> BlackHoleProxy:
        """A proxy to the server of a libpq URL."""
        params = conninfo_to_dict(url)
        return cls(params.get("host") or "127.0.0.1", int(params.get("port") or 5432))

    def url(self, url: str) -> str:
        """url, through this proxy."""
        params = conninfo_to_dict(url)
        params.update(host="127.0.0.1", port=str(self.port))
        return make_conninfo(**params)

    def _add(self, sock: socket.socket, peer: socket.socket | None, *, client_side: bool) -> None:
        self._peers[sock] = (peer, client_side)
        self._selector.register(sock, selectors.EVENT_READ, None)

    def _relay(self, sock: socket.socket) -> None:
        peer, client_side = self._peers[sock]
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            # This side closed: forget it, and pass the close on only while forwarding.
            self._selector.unregister(sock)
            del self._peers[sock]
            sock.close()
            if self.mode == "forward" and peer is not None and peer in self._peers:
                self._selector.unregister(peer)
                del self._peers[peer]
                peer.close()
            return
        forwards = self.mode == "forward" or (self.mode == "server_to_client" and client_side)
        if forwards and peer is not None and peer in self._peers:
            with contextlib.suppress(OSError):  # the peer went: nothing to pass on
                peer.sendall(data)
