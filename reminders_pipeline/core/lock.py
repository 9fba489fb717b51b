"""The run lock: one session-level PostgreSQL advisory lock for the whole run.

The lock lives on a dedicated autocommit connection opened for the run and
closed with it. A normal end or an error releases it explicitly; a killed
process closes its socket and PostgreSQL drops the lock with the session, so a
crash never leaves it behind. See docs/decisions/lock-scope.md for why this is
a session lock and not a transaction lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from reminders_pipeline.db.connector import Session
from reminders_pipeline.db.lock_holder import (
    LockHolder,
    application_name_for,
    find_lock_holder,
    held_by_this_session,
)
from reminders_pipeline.db.lock_keys import LOCK_KEY
from reminders_pipeline.db.pooler import require_session_binding
from reminders_pipeline.db.run_sessions import RunSessions
from reminders_pipeline.errors import ConnectionLost, DatabaseError, LockLost, first_line

log = logging.getLogger(__name__)

# The lock session's server-side bounds (keepalives, timeouts, the client connection
# check) come from REMINDERS_RUN_SILENCE_S (db/run_sessions.py): a vanished host, a
# killed client and a silent peer all lose the lock within that bound.


class RunLock:
    """The advisory lock of one run, on its own connection.

    Use as a context manager: the connection (and with it the lock) is gone
    when the block ends, whatever happens inside.
    """

    def __init__(self, url: str, run_id: str | None, sessions: RunSessions | None = None) -> None:
        self.url = url
        self.run_id = run_id
        # The run's own (watched); a lock taken alone gets the bounds without the watch.
        self.sessions = sessions or RunSessions(url)
        self._conn: Session | None = None
        self._server_pid: int | None = None
        self.acquired = False

    def __enter__(self) -> RunLock:
        self._conn = self.sessions.open(
            autocommit=True, application_name=application_name_for(self.run_id)
        )
        try:
            # Before anything else on this session: behind a transaction-mode pooler
            # the lock would land on a server connection nobody owns (db/pooler.py).
            # The server's pid, not BackendKeyData's (a pooler's own number), is
            # what pg_locks shows and what the run log records.
            self._server_pid = require_session_binding(self._conn, self.url)
            self._warn_if_old_server()
            self.sessions.bounds.apply(self._conn)
        except BaseException:
            # A session left open here would carry this run's name, and look alive.
            self._conn.close()
            self._conn = None
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _warn_if_old_server(self) -> None:
        if self.conn.server_version < 140000:
            log.warning(
                "PostgreSQL %s has no client_connection_check_interval nor idle_session_timeout:"
                " a killed run keeps the lock until its statement in flight ends, and a silent"
                " one while its session is idle outside a transaction",
                self.conn.server_version,
            )

    @property
    def conn(self) -> Session:
        if self._conn is None:
            raise RuntimeError("RunLock used outside its `with` block")
        return self._conn

    @property
    def backend_pid(self) -> int:
        if self._conn is None or self._server_pid is None:
            raise RuntimeError("RunLock used outside its `with` block")
        return self._server_pid

    def try_acquire(self) -> bool:
        row = self.conn.one("try_run_lock", **LOCK_KEY.params())
        self.acquired = bool(row and row["acquired"])
        return self.acquired

    def holder(self) -> LockHolder | None:
        return find_lock_holder(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction on the lock's own session: the run's writes go through here.

        Work done on this session dies with it: if the session is lost (network,
        pg_terminate_backend, server restart) the statement in flight is gone from
        the server and its transaction rolled back, so nothing of this run can go on
        writing while another run takes the lock.
        """
        conn = self.conn
        try:
            with conn.transaction():
                yield conn
        except DatabaseError as exc:
            if isinstance(exc, ConnectionLost) or conn.closed or conn.broken:
                raise LockLost(
                    f"the run lock session was lost (database connection lost: "
                    f"{first_line(exc.__cause__ or exc)})"
                ) from exc
            raise

    def cancel(self) -> None:
        """Cancel the statement in flight on the lock session (if any), on the server.

        Safe to call from a signal handler or another thread: the cancel request
        goes on a connection of its own.
        """
        conn = self._conn  # close() may clear it meanwhile, from the run's thread
        if conn is not None:
            conn.cancel_in_flight()

    def ensure_held(self) -> None:
        """Raise LockLost unless this session still holds the lock."""
        try:
            held = held_by_this_session(self.conn)
        except DatabaseError as exc:
            raise LockLost(
                f"the run lock connection is gone: {exc.__cause__ or exc}".strip()
            ) from exc
        if not held:
            raise LockLost("the run lock is no longer held by this run's session")

    def release(self) -> bool:
        """Release the lock if we took it; an unlock that finds nothing is logged as an error."""
        if not self.acquired:
            return False
        self.acquired = False
        if self.conn.closed or self.conn.broken:
            log.warning("the run lock session is gone: PostgreSQL dropped the lock with it")
            return False
        try:
            row = self.conn.one("release_run_lock", **LOCK_KEY.params())
        except DatabaseError as exc:
            # The session is gone, and the lock with it.
            log.warning("could not release the run lock (connection lost: %s)", exc)
            return False
        released = bool(row and row["released"])
        if not released:
            log.error(
                "pg_advisory_unlock(%s, %s) returned false: the run lock was not held by "
                "this session (lost connection, or a transaction-mode pooler in between?)",
                *LOCK_KEY,
            )
        return released

    def close(self) -> None:
        if self._conn is None:
            return
        try:
            self.release()
        finally:
            self._conn.close()
            self._conn = None
