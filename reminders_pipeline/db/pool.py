"""PooledDatabase: a `Database` whose sessions come from a psycopg_pool with a maximum.

For a long-lived server (the admin API): connections are reused instead of opened
per call, their number is bounded, and every wait is bounded too. A caller waits
at most `pool_timeout_s` for a free connection (then DatabaseBusy), each statement
waits at most `lock_timeout_ms` for a row lock (then a DatabaseError with sqlstate
55P03) and runs at most `statement_timeout_ms` (sqlstate 57014).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from reminders_pipeline.db.connector import CONNECT_TIMEOUT_S, Database, Session
from reminders_pipeline.db.url import describe
from reminders_pipeline.errors import DatabaseUnavailable, first_line

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"


class DatabaseBusy(DatabaseUnavailable):
    """Every pooled connection stayed busy for the whole wait."""


class PooledDatabase(Database):
    """The reminders database through a bounded pool; `close()` when done."""

    def __init__(
        self,
        url: str,
        *,
        max_size: int,
        pool_timeout_s: float,
        lock_timeout_ms: int,
        statement_timeout_ms: int,
        application_name: str = "reminders-admin-api",
    ) -> None:
        super().__init__(url)
        self.pool_timeout_s = pool_timeout_s
        self._in_use = 0  # connections handed out now: tells "all busy" from "unreachable"
        self._count = threading.Lock()
        # Server-side limits on every statement of every pooled session, after the
        # URL's own options (a role, a search_path), which they must not replace.
        limits = f"-c lock_timeout={lock_timeout_ms} -c statement_timeout={statement_timeout_ms}"
        own = conninfo_to_dict(url).get("options")
        self.pool = ConnectionPool(
            url,
            min_size=min(2, max_size),
            max_size=max_size,
            timeout=pool_timeout_s,
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": application_name,
                "options": f"{own} {limits}" if own else limits,
            },
            # A dead connection is replaced, not handed out.
            check=ConnectionPool.check_connection,
            open=False,
            name="reminders-admin",
        )
        # Opening does not wait for the database: a server that starts while it is
        # down answers 503 until it is back.
        self.pool.open(wait=False)

    @contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[Session]:
        try:
            conn: psycopg.Connection = self.pool.getconn(timeout=self.pool_timeout_s)
        except PoolTimeout:
            if self._in_use < self.pool.max_size:
                # Not all of them are busy: the pool could not connect in time.
                raise DatabaseUnavailable(
                    f"cannot connect to the reminders database at {describe(self.url)} "
                    f"within {self.pool_timeout_s:g} s"
                ) from None
            raise DatabaseBusy(
                f"no free connection to {describe(self.url)} within {self.pool_timeout_s:g} s "
                f"(all {self.pool.max_size} busy)"
            ) from None
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"cannot use the pool: {first_line(exc)}") from None
        with self._count:
            self._in_use += 1
        try:
            # Back to the pool, which resets it (rolls back anything left open) or discards it.
            with Session(conn, release=self.pool.putconn) as session:
                conn.autocommit = autocommit
                yield session
        finally:
            with self._count:
                self._in_use -= 1

    def close(self) -> None:
        self.pool.close()
