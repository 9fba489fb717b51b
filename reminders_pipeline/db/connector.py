"""The only door to psycopg: sessions that run named queries, driver errors turned into ours.

Everything above db/ talks to PostgreSQL through a `Session` (one connection) or a
`Database` (short sessions per unit of work). A psycopg error never leaves db/
as such: it becomes DatabaseUnavailable (cannot connect) or DatabaseError
(a statement failed, or the session died), with one clear line and the driver's
error as the cause.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import fields
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from reminders_pipeline.db.queries import query
from reminders_pipeline.db.url import describe
from reminders_pipeline.errors import ConnectionLost, DatabaseError, DatabaseUnavailable, first_line

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
R = TypeVar("R")


def raw_connection(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection:
    """A psycopg connection with dict rows, or DatabaseUnavailable. For db/ itself only."""
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            row_factory=kwargs.pop("row_factory", dict_row),
            connect_timeout=kwargs.pop("connect_timeout", CONNECT_TIMEOUT_S),
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the reminders database at {describe(url)}: {first_line(exc)}"
        ) from None


def results_within(
    pgconn: pq.abc.PGconn, sql: bytes, deadline: float
) -> list[pq.abc.PGresult] | None:
    """Send `sql` (simple protocol) and read all its results; None once `deadline`
    (time.monotonic()) passes first. libpq's own calls wait for ever on a silent peer,
    or on a pool with nothing free."""
    pgconn.send_query(sql)
    results = []
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            res = pgconn.get_result()
            if res is None:
                return results
            results.append(res)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([pgconn.socket], [], [], remaining)[0]:
            return None


def record_from_row(cls: type[R], row: Mapping[str, Any], **given: Any) -> R:
    """The dataclass `cls` from a row: each field from the column of its name, unless given."""
    return cls(**{f.name: row[f.name] for f in fields(cls) if f.name not in given}, **given)  # type: ignore[call-arg]


class Session:
    """One database session. Statements by name (queries.sql) or as SQL text.

    As a context manager: commit on a clean exit (unless autocommit), roll back on
    an error, close either way (`release`, e.g. a pool's putconn, instead of close).
    """

    def __init__(
        self, conn: psycopg.Connection, release: Callable[[psycopg.Connection], None] | None = None
    ) -> None:
        self._conn = conn
        self._release = release

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """A driver error as ours, 'database error: <its first line>': ConnectionLost
        when the session died with it (the caller may retry on a new one)."""
        try:
            yield
        except psycopg.Error as exc:
            conn = self._conn
            lost = isinstance(exc, psycopg.OperationalError) and (conn.closed or conn.broken)
            raise (ConnectionLost if lost else DatabaseError)(
                f"database error: {first_line(exc)}", getattr(exc, "sqlstate", None)
            ) from exc

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> Any:
        """Run SQL text; returns the cursor (fetchone, fetchall, rowcount)."""
        with self._translated():
            return self._conn.execute(sql, params)  # type: ignore[arg-type]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction block on this session (also on an autocommit one)."""
        with self._translated(), self._conn.transaction():
            yield self

    def cancel_in_flight(self, timeout_s: float = 5.0) -> None:
        """Cancel the statement in flight on this session (if any), on the server.

        Safe from a signal handler or another thread: the cancel request goes on a
        connection of its own.
        """
        if not self.busy:
            return  # no statement in flight: nothing to cancel
        try:
            self._conn.cancel_safe(timeout=timeout_s)
        except Exception as exc:  # the session may be gone already; nothing left to cancel
            log.warning("could not cancel the statement in flight: %s", exc)

    def one(self, name: str, **params: Any) -> dict[str, Any] | None:
        return self.execute(query(name), params).fetchone()

    def all(self, name: str, **params: Any) -> list[dict[str, Any]]:
        return self.execute(query(name), params).fetchall()

    def run(self, name: str, **params: Any) -> int:
        """Run a named statement; returns the number of rows it touched."""
        return self.execute(query(name), params).rowcount

    def commit(self) -> None:
        with self._translated():
            self._conn.commit()

    def rollback(self) -> None:
        with self._translated():
            self._conn.rollback()

    @property
    def closed(self) -> bool:
        return self._conn.closed

    @property
    def broken(self) -> bool:
        return self._conn.broken

    @property
    def busy(self) -> bool:
        """A statement is in flight (readable from another thread)."""
        return not self._conn.closed and (
            self._conn.pgconn.transaction_status == pq.TransactionStatus.ACTIVE
        )

    @property
    def server_version(self) -> int:
        return self._conn.info.server_version

    @property
    def raw(self) -> psycopg.Connection:
        """The driver's connection, for db/ modules only (the pooler check, shutting a
        silent run session's socket)."""
        return self._conn

    @property
    def backend_pid(self) -> int:
        return self._conn.info.backend_pid

    def close(self) -> None:
        if self._release is None:
            self._conn.close()
        else:
            self._release(self._conn)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if not self._conn.autocommit:
                if exc_type is None:
                    self.commit()
                elif not self._conn.closed:
                    # A session that is gone cannot roll back; the original error says more.
                    with suppress(DatabaseError):
                        self.rollback()
        finally:
            self.close()


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> Session:
    """Open a session (kwargs are libpq parameters), or raise DatabaseUnavailable."""
    return Session(raw_connection(url, autocommit=autocommit, **kwargs))


class Database:
    """The reminders database, reached through named queries.

    Short-lived sessions per unit of work: the job opens a handful per run,
    so a pool would add moving parts without saving time.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def _open(self, autocommit: bool) -> Session:
        return connect(self.url, autocommit=autocommit)

    @contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[Session]:
        with self._open(autocommit) as session:
            yield session

    def fetch_one(self, name: str, **params: Any) -> dict[str, Any] | None:
        with self.connection() as session:
            return session.one(name, **params)

    def fetch_all(self, name: str, **params: Any) -> list[dict[str, Any]]:
        with self.connection() as session:
            return session.all(name, **params)
