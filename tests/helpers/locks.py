"""Observe the run lock from outside, as another session would."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from reminders_pipeline.db.connector import connect
from reminders_pipeline.db.lock_holder import LockHolder, find_lock_holder
from reminders_pipeline.db.lock_keys import LOCK_KEY, MIGRATION_LOCK
from reminders_pipeline.db.migrate import APPLICATION_NAME


def run_lock_holder(url: str) -> LockHolder | None:
    """Who holds the run lock, as the package itself reads it."""
    with connect(url, autocommit=True) as conn:
        return find_lock_holder(conn)


def lock_free(url: str) -> bool:
    """Whether a separate session could take the run lock now (it gives it back at once)."""
    with psycopg.connect(url, autocommit=True) as other:
        got = other.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()[0]
        if got:
            other.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEY)
        return got


def migration_session(url: str) -> dict[str, Any] | None:
    """The `reminders db upgrade` session on this database, if any, and which of the
    migration lock (namespace, 0) and the run lock (namespace, 1) it holds."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT a.pid, a.state,
                   EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid
                           AND l.locktype = 'advisory' AND l.granted
                           AND l.classid = %(ns)s::bigint::oid
                           AND l.objid = %(migration)s::bigint::oid) AS migration_lock,
                   EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid
                           AND l.locktype = 'advisory' AND l.granted
                           AND l.classid = %(ns)s::bigint::oid
                           AND l.objid = %(run)s::bigint::oid) AS run_lock
            FROM pg_stat_activity a
            WHERE a.datname = current_database() AND a.application_name = %(app)s
            """,
            {
                "ns": LOCK_KEY[0],
                "migration": MIGRATION_LOCK[1],
                "run": LOCK_KEY[1],
                "app": APPLICATION_NAME,
            },
        ).fetchone()
