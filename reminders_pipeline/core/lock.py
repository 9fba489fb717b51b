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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from reminders_pipeline.db.connector import connect
from reminders_pipeline.db.pooler import require_session_binding
from reminders_pipeline.db.queries import query
from reminders_pipeline.errors import LockLost

log = logging.getLogger(__name__)

# LOCK_KEY uses the two-int form (namespace, job) of the advisory-lock functions.
# The namespace 0x52454D49 is "REMI" in ASCII: a value chosen to be recognisable
# in pg_locks (classid = 1380273481) and unlikely to collide with other users of
# the same database, which by convention take their own namespace (or use the
# one-bigint form, a separate key space: objsubid 1 instead of 2). Jobs inside
# the namespace: 0 is schema migration, 1 the daily follow-up reminders run.
# Changing the value while an old deployment still runs would let both run at
# once: never change it without stopping every deployment first.
LOCK_NAMESPACE = 0x52454D49
REMINDERS_RUN_JOB = 1
LOCK_KEY = (LOCK_NAMESPACE, REMINDERS_RUN_JOB)

APPLICATION_PREFIX = "reminders-run:"

# TCP keepalives bound how long a vanished host (power loss, network split) keeps
# the lock. The client side (libpq) notices a dead server; only the server side
# makes PostgreSQL drop the session of a client host that went away, after about
# idle + interval * count seconds instead of the kernel's two hours. The server
# settings are SET after connecting rather than passed as startup options, which
# some poolers refuse; on a Unix socket PostgreSQL ignores them.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
SERVER_KEEPALIVES = {
    "tcp_keepalives_idle": 30,
    "tcp_keepalives_interval": 10,
    "tcp_keepalives_count": 3,
}
# The run's statements execute on the lock session, and a backend busy with one
# (an INSERT waiting for a row lock, say) does not read its socket: without this
# check a killed client's session, and the lock with it, would live on until the
# statement ends. PostgreSQL 14+ polls the socket this often (ms) while a
# statement runs and ends the session when the client has gone.
CLIENT_CONNECTION_CHECK_INTERVAL_MS = 1000


def application_name_for(run_id: str | None) -> str:
    """application_name of the lock session: names the run that holds the lock."""
    return f"{APPLICATION_PREFIX}{run_id or 'unknown'}"[:63]


def run_id_from_application_name(name: str | None) -> str | None:
    if name and name.startswith(APPLICATION_PREFIX):
        run_id = name[len(APPLICATION_PREFIX) :]
        return None if run_id == "unknown" else run_id
    return None


@dataclass(frozen=True)
class LockHolder:
    """Who holds the run lock, as PostgreSQL sees it."""

    pid: int
    application_name: str | None
    since: datetime | None
    client_addr: str | None
    run_id: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LockHolder:
        return cls(
            pid=row["pid"],
            application_name=row["application_name"],
            since=row["since"],
            client_addr=row["client_addr"],
            run_id=run_id_from_application_name(row["application_name"]),
        )

    def describe(self) -> str:
        who = f"pid {self.pid}"
        if self.run_id:
            who += f", run {self.run_id}"
        elif self.application_name:
            who += f", {self.application_name!r}"
        if self.since:
            who += f", since {self.since.isoformat(timespec='seconds')}"
        return who


def _params() -> dict[str, int]:
    return {"namespace": LOCK_NAMESPACE, "job": REMINDERS_RUN_JOB}


def find_lock_holder(conn: psycopg.Connection) -> LockHolder | None:
    row = conn.execute(query("run_lock_holder"), _params()).fetchone()
    return LockHolder.from_row(row) if row else None


class RunLock:
    """The advisory lock of one run, on its own connection.

    Use as a context manager: the connection (and with it the lock) is gone
    when the block ends, whatever happens inside.
    """

    def __init__(self, url: str, run_id: str | None) -> None:
        self.url = url
        self.run_id = run_id
        self._conn: psycopg.Connection | None = None
        self._server_pid: int | None = None
        self.acquired = False

    def __enter__(self) -> RunLock:
        self._conn = connect(
            self.url,
            autocommit=True,
            application_name=application_name_for(self.run_id),
            **KEEPALIVES,
        )
        try:
            # Before anything else on this session: behind a transaction-mode pooler
            # the lock would land on a server connection nobody owns (db/pooler.py).
            # The server's pid, not BackendKeyData's (a pooler's own number), is
            # what pg_locks shows and what the run log records.
            self._server_pid = require_session_binding(self._conn, self.url).server_pid
            for name, value in SERVER_KEEPALIVES.items():
                self._conn.execute(f"SET {name} = {int(value)}")
            self._set_client_connection_check()
        except BaseException:
            # A session left open here would carry this run's name, and look alive.
            self._conn.close()
            self._conn = None
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _set_client_connection_check(self) -> None:
        conn = self.conn
        if conn.info.server_version < 140000:
            log.warning(
                "PostgreSQL %s has no client_connection_check_interval: a killed run keeps "
                "the lock until its statement in flight ends",
                conn.info.server_version,
            )
            return
        conn.execute(
            f"SET client_connection_check_interval = {int(CLIENT_CONNECTION_CHECK_INTERVAL_MS)}"
        )

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None:
            raise RuntimeError("RunLock used outside its `with` block")
        return self._conn

    @property
    def backend_pid(self) -> int:
        if self._conn is None or self._server_pid is None:
            raise RuntimeError("RunLock used outside its `with` block")
        return self._server_pid

    def try_acquire(self) -> bool:
        row = self.conn.execute(query("try_run_lock"), _params()).fetchone()
        self.acquired = bool(row and row["acquired"])
        return self.acquired

    def holder(self) -> LockHolder | None:
        return find_lock_holder(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
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
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken:
                raise LockLost(
                    f"the run lock session was lost (database connection lost: {_first_line(exc)})"
                ) from exc
            raise

    def cancel(self) -> None:
        """Cancel the statement in flight on the lock session (if any), on the server.

        Safe to call from a signal handler or another thread: psycopg sends the
        cancel request on a connection of its own.
        """
        conn = self._conn
        if conn is None or conn.closed:
            return
        if conn.pgconn.transaction_status != TransactionStatus.ACTIVE:
            return  # no statement in flight: nothing to cancel
        try:
            conn.cancel_safe(timeout=5.0)
        except Exception as exc:  # the session may be gone already; nothing left to cancel
            log.warning("could not cancel the run's statement in flight: %s", exc)

    def ensure_held(self) -> None:
        """Raise LockLost unless this session still holds the lock."""
        try:
            row = self.conn.execute(query("run_lock_held_by_me"), _params()).fetchone()
        except psycopg.Error as exc:
            raise LockLost(f"the run lock connection is gone: {exc}".strip()) from exc
        if not (row and row["held"]):
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
            row = self.conn.execute(query("release_run_lock"), _params()).fetchone()
        except psycopg.Error as exc:
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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
