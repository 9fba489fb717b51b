"""Every session a run holds, bounded on the server and watched in the client.

A peer that keeps the TCP connection open while saying nothing (a hung pooler,
middlebox or NAT, a frozen process) defeats keepalives and the client connection
check: both only notice a peer that is gone. Two bounds, both derived from
REMINDERS_RUN_SILENCE_S (settings/liveness.py), cover it:

- On the server, each session of the run ends once its client has been silent
  that long while idle, in a transaction or not (idle_in_transaction_session_timeout,
  idle_session_timeout), or leaves sent data unacknowledged that long
  (tcp_user_timeout); keepalives end a vanished host within about half of it. The
  advisory lock goes with the session. There is no statement timeout: a statement
  the server is working on is never cut, so a long healthy batch runs to its end.
- In the client, a watchdog asks the server on a fresh connection, every quarter
  of the bound, whether it answers. Once nothing has come back for the whole bound,
  it shuts down the sockets of the run's sessions: a read that would wait for ever
  fails at once, and the run ends as failed, naming why.

The server settings are SET after connecting (one statement) rather than passed
as startup options, which some poolers refuse.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from reminders_pipeline.db.connector import Database, Session, connect, results_within
from reminders_pipeline.settings.liveness import LivenessSettings

log = logging.getLogger(__name__)

PROBE_APPLICATION_NAME = "reminders-run-probe"
# PostgreSQL polls a busy session's socket this often (ms) for a client that went away.
CLIENT_CHECK_MS = 1000


@dataclass(frozen=True)
class SessionBounds:
    """The TCP and server-side limits of one run session."""

    liveness: LivenessSettings

    @property
    def silence_ms(self) -> int:
        return self.liveness.silence_s * 1000

    def libpq_params(self) -> dict[str, int]:
        """The client side: libpq notices a vanished or unacknowledging server."""
        return {
            "keepalives": 1,
            "keepalives_idle": self.liveness.keepalive_idle_s,
            "keepalives_interval": self.liveness.keepalive_interval_s,
            "keepalives_count": 3,
            "tcp_user_timeout": self.silence_ms,
        }

    def server_settings(self, server_version: int) -> dict[str, int]:
        """The server side; on a Unix socket PostgreSQL ignores the tcp_* ones."""
        values = {
            "idle_in_transaction_session_timeout": self.silence_ms,
            "tcp_keepalives_idle": self.liveness.keepalive_idle_s,
            "tcp_keepalives_interval": self.liveness.keepalive_interval_s,
            "tcp_keepalives_count": 3,
            "tcp_user_timeout": self.silence_ms,
        }
        if server_version >= 140000:
            values["idle_session_timeout"] = self.silence_ms
            values["client_connection_check_interval"] = min(CLIENT_CHECK_MS, self.silence_ms)
        return values

    def apply(self, session: Session, *, local: bool = False) -> None:
        """SET the server-side bounds on session (one round trip); `local`: for the
        transaction in progress only."""
        values = self.server_settings(session.server_version)
        if local:  # idle_session_timeout does not apply inside a transaction
            values.pop("idle_session_timeout", None)
        scope = "true" if local else "false"
        calls = ", ".join(f"set_config('{name}', %({name})s, {scope})" for name in values)
        session.execute(f"SELECT {calls}", {name: str(value) for name, value in values.items()})


class RunSessions:
    """Opens a run's sessions with their bounds, and watches the server while the run lasts.

    start() and stop() bracket the watch; sessions opened meanwhile are the ones it
    closes when the server stays silent. `tripped` says why it did, once it has.
    """

    def __init__(self, url: str, liveness: LivenessSettings | None = None) -> None:
        self.url = url
        self.liveness = liveness or LivenessSettings.from_env()
        self.bounds = SessionBounds(self.liveness)
        self.tripped: str | None = None
        self._sessions: weakref.WeakSet[Session] = weakref.WeakSet()
        self._guard = threading.Lock()
        self._heard = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._give_up: threading.Timer | None = None

    # -- sessions ----------------------------------------------------------------

    def open(self, *, autocommit: bool = False, **kwargs: Any) -> Session:
        """A session with the client-side bounds, watched; the server's come with bounds.apply()."""
        session = connect(self.url, autocommit=autocommit, **self.bounds.libpq_params(), **kwargs)
        self._heard = time.monotonic()  # it connected: the server answers
        with self._guard:
            self._sessions.add(session)
        return session

    def connect(self, *, autocommit: bool = False, **kwargs: Any) -> Session:
        session = self.open(autocommit=autocommit, **kwargs)
        try:
            self.bounds.apply(session)
        except BaseException:
            session.close()
            raise
        return session

    # -- the watch ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._heard = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="reminders-run-watch", daemon=True)
        self._thread.start()

    def give_up_after(self, seconds: float, reason: str) -> None:
        """Close the sessions still waiting on the server `seconds` from now (once).

        For a run being stopped (a signal, Dagster's terminate or max runtime): its
        cancel goes through the same path as its statement and may get no answer.
        """
        if self._give_up is None:
            self._give_up = threading.Timer(seconds, self._close_busy, args=(seconds, reason))
            self._give_up.daemon = True
            self._give_up.start()

    def _close_busy(self, seconds: float, reason: str) -> None:
        with self._guard:
            busy = [s for s in self._sessions if s.busy]
        if busy:
            log.error(
                "%s: %d statement(s) still in flight after %gs, closing", reason, len(busy), seconds
            )
            for session in busy:
                shut_down(session)

    def stop(self) -> None:
        if self._give_up is not None:
            self._give_up.cancel()
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            # Not for a probe in flight (it ends within its deadline, and the daemon
            # thread with it): the run's exit must not wait on a silent server.
            thread.join(timeout=0.5)

    def _watch(self) -> None:
        while not self._stop.wait(self.liveness.probe_interval_s):
            if probe(self.url, max(2.0, self.liveness.probe_interval_s / 2)):
                self._heard = time.monotonic()
            silent_s = time.monotonic() - self._heard
            if silent_s >= self.liveness.silence_s and not self._stop.is_set():
                self._trip(silent_s)

    def _trip(self, silent_s: float) -> None:
        with self._guard:
            sessions = [s for s in self._sessions if not s.closed]
        if self.tripped is None:
            self.tripped = (
                f"the database answered nothing for {silent_s:.0f}s "
                f"(REMINDERS_RUN_SILENCE_S={self.liveness.silence_s}): "
                "the run closed its sessions"
            )
            log.error("%s (%d open)", self.tripped, len(sessions))
        for session in sessions:
            shut_down(session)


def shut_down(session: Session) -> None:
    """Shut the session's socket down (from any thread): a read blocked on it fails at once.

    The descriptor itself stays open, owned by the driver, which closes it when the
    failed read marks the connection broken; closing it here could hand its number
    to another file meanwhile.
    """
    try:
        fd = session.raw.pgconn.socket
    except psycopg.Error:
        return  # already closed
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:
        log.debug("could not shut down a run session's socket: %s", exc)


def probe(url: str, timeout_s: float) -> bool:
    """Whether the server answers within timeout_s, on a connection of its own.

    An error the server sent (too many connections, shutting down) is an answer too:
    only silence counts against the run.
    """
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(2, int(timeout_s)),
            application_name=PROBE_APPLICATION_NAME,
        )
    except psycopg.Error as exc:
        return "FATAL:" in str(exc) or "ERROR:" in str(exc)
    try:
        return results_within(conn.pgconn, b"SELECT 1", time.monotonic() + timeout_s) is not None
    except psycopg.Error:
        return False
    finally:
        conn.close()


class RunDatabase(Database):
    """The run's short work sessions (run log, counts), each opened through RunSessions."""

    def __init__(self, sessions: RunSessions) -> None:
        super().__init__(sessions.url)
        self.sessions = sessions

    def _open(self, autocommit: bool) -> Session:
        return self.sessions.connect(autocommit=autocommit)


@contextmanager
def watched_database(url: str) -> Iterator[RunDatabase]:
    """A Database whose sessions are bounded and watched while the block lasts: for
    a run's reads and writes outside its steps (the launcher reading its row back)."""
    sessions = RunSessions(url)
    sessions.start()
    try:
        yield RunDatabase(sessions)
    finally:
        sessions.stop()
