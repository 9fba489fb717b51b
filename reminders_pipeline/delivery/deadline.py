"""Hard deadlines for a send, whatever the peer does.

Socket timeouts bound one read or write, not a conversation: a peer that trickles a
byte a second never trips them. So a send is bounded twice:

- SocketWatchdog shuts the send's connection down (shutdown(2) on a duplicate of its
  socket, which breaks every read and write on it, TLS or not) when the deadline
  passes: a trickled banner, reply or TLS handshake, or a server that stops after
  DATA, ends there. A connection made after the deadline (a slow DNS answer) is
  refused before a byte is written.
- call_with_deadline runs the send in its own thread and gives up waiting at the
  deadline plus SEND_MARGIN_S, for what no socket covers (name resolution).

The webhook channel runs on an event loop instead and uses asyncio.timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import TypeVar

T = TypeVar("T")


class DeadlinePassed(TimeoutError):
    """The send's deadline passed before it ended."""


class SocketWatchdog:
    """Shuts down every watched socket once timeout_s has passed (a context manager)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.fired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer = threading.Timer(timeout_s, self.fire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        """Watch sock's connection (through a duplicate: the original may be wrapped in
        TLS and detached later); DeadlinePassed if the deadline has already passed."""
        dup = sock.dup()
        with self._lock:
            if not self.fired:
                self._watched.append(dup)
                return
        dup.close()
        raise DeadlinePassed(f"the send's {self.timeout_s:g}s deadline passed while connecting")

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._watched:
                with contextlib.suppress(OSError):  # already closed by the peer
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> SocketWatchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            self.fired = True  # nothing may connect once the send has ended
            for sock in self._watched:
                sock.close()
            self._watched.clear()


def call_with_deadline(fn: Callable[[], T], limit_s: float, name: str) -> T:
    """fn() in a daemon thread: its value or its exception, or DeadlinePassed after
    limit_s (the thread is left to end by itself; fn must not act after its own
    deadline, as SmtpSender's watchdog ensures)."""
    outcome: Future[T] = Future()

    def target() -> None:
        try:
            outcome.set_result(fn())
        except BaseException as exc:  # handed to the caller
            outcome.set_exception(exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    if not wait([outcome], limit_s).done:
        raise DeadlinePassed(f"the send did not end within {limit_s:g}s")
    return outcome.result()
