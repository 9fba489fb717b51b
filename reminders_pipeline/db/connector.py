"""A thin connector: named queries in, dict rows out, driver errors turned into ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from reminders_pipeline.db.queries import query
from reminders_pipeline.db.url import describe
from reminders_pipeline.errors import DatabaseUnavailable

CONNECT_TIMEOUT_S = 10


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection:
    """Open a psycopg connection with dict rows, or raise DatabaseUnavailable."""
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            row_factory=kwargs.pop("row_factory", dict_row),
            connect_timeout=kwargs.pop("connect_timeout", CONNECT_TIMEOUT_S),
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot connect to the reminders database at {describe(url)}: {first_line}"
        ) from None


class Database:
    """The reminders database, reached through named queries.

    Short-lived connections per unit of work: the job opens a handful per run,
    so a pool would add moving parts without saving time.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    @contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        conn = connect(self.url, autocommit=autocommit)
        try:
            yield conn
            if not autocommit:
                conn.commit()
        except BaseException:
            if not conn.closed and not autocommit:
                conn.rollback()
            raise
        finally:
            conn.close()

    def fetch_one(self, name: str, **params: Any) -> dict[str, Any] | None:
        with self.connection() as conn:
            return conn.execute(query(name), params).fetchone()

    def fetch_all(self, name: str, **params: Any) -> list[dict[str, Any]]:
        with self.connection() as conn:
            return conn.execute(query(name), params).fetchall()

    def execute(self, name: str, **params: Any) -> int:
        with self.connection() as conn:
            return conn.execute(query(name), params).rowcount
