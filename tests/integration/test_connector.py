"""The connector is the only door to psycopg: every driver error comes out as ours."""

from __future__ import annotations

import psycopg
import pytest

from reminders_pipeline.db.connector import Database, connect
from reminders_pipeline.errors import DatabaseError, DatabaseUnavailable


def test_a_failed_statement_is_a_database_error_with_its_sqlstate(db: Database) -> None:
    expected = pytest.raises(DatabaseError, match="^database error: division by zero$")
    with expected as caught, db.connection() as conn:
        conn.execute("SELECT 1 / 0")
    assert caught.value.sqlstate == "22012"
    assert isinstance(caught.value.__cause__, psycopg.Error)


def test_a_named_query_with_a_bad_parameter_is_a_database_error(db: Database) -> None:
    with pytest.raises(DatabaseError, match="^database error: "):
        db.fetch_one("count_due_assignments", as_of="not a date", default_interval=10)


def test_a_session_killed_under_a_statement_is_a_database_error(db_url: str) -> None:
    with connect(db_url, autocommit=True) as victim, connect(db_url, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (victim.backend_pid,))
        with pytest.raises(DatabaseError, match="^database error: "):
            victim.execute("SELECT 1")


def test_an_unreachable_server_is_database_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot connect to the reminders database"):
        connect("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)
