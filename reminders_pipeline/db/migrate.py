"""Versioned schema migrations, run by Alembic over plain .sql files.

Each revision in migrations/versions/ is a tiny Python file beside a .sql file of
the same name; `reminders db upgrade` applies what is missing, once.

A migration never runs under a reminders run: when there is something to apply,
upgrade takes the run lock (LOCK_KEY) on its own session first, waiting up to
REMINDERS_MIGRATION_LOCK_WAIT_S for a run in progress to finish, then refuses
with MigrationBlocked naming the holder. Holding it, the migration makes runs
started meanwhile skip (they name the `reminders-migrate` session) instead of
working on a schema that changes under them. With nothing to apply, upgrade
leaves the run lock alone, so a no-op upgrade never waits for a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import sqlalchemy
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg.rows import tuple_row
from sqlalchemy.pool import NullPool

from reminders_pipeline import settings
from reminders_pipeline.db.connector import raw_connection
from reminders_pipeline.db.lock_holder import LockHolder, lock_holder
from reminders_pipeline.db.lock_keys import LOCK_KEY, MIGRATION_LOCK
from reminders_pipeline.db.queries import query
from reminders_pipeline.db.schema_version import VERSION_TABLE
from reminders_pipeline.errors import MigrationBlocked

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Names the migration's session in pg_stat_activity, and in a skipped run's record.
APPLICATION_NAME = "reminders-migrate"
_POLL_S = 0.2


def run_sql_file(revision_file: str) -> None:
    """Execute the .sql twin of a revision file on the migration's connection."""
    sql = Path(revision_file).with_suffix(".sql").read_text()
    # The raw psycopg connection runs a multi-statement script as is (no
    # parameter parsing, no SQLAlchemy bind syntax).
    op.get_bind().connection.driver_connection.execute(sql)


def _config(connection: sqlalchemy.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(
        "postgresql+psycopg://",
        creator=lambda: raw_connection(
            url, row_factory=tuple_row, application_name=APPLICATION_NAME
        ),
        poolclass=NullPool,
    )


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def revisions() -> list[str]:
    """Every revision, oldest first."""
    scripts = ScriptDirectory.from_config(_config()).walk_revisions()
    return [script.revision for script in reversed(list(scripts))]


def _revision_of(conn: sqlalchemy.Connection) -> str | None:
    return MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()


def current_revision(url: str) -> str | None:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return _revision_of(conn)
    finally:
        engine.dispose()


def _take_run_lock(
    raw: psycopg.Connection,
    url: str,
    wait_s: float,
    on_wait: Callable[[LockHolder], None] | None,
    what: str,
) -> None:
    """Take the run lock on the migration's session, or raise MigrationBlocked."""
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        row = raw.execute(query("try_run_lock"), LOCK_KEY.params()).fetchone()
        if row[0]:
            return
        holder = lock_holder(url)
        if holder is not None and not told and on_wait is not None and wait_s > 0:
            on_wait(holder)
            told = True
        if time.monotonic() >= deadline:
            who = holder.describe() if holder else "a session that just let go"
            name = f" ({holder.application_name!r})" if holder and holder.application_name else ""
            raise MigrationBlocked(
                f"not migrating {what}: the reminders run lock {tuple(LOCK_KEY)} is held by "
                f"{who}{name} after waiting {wait_s:g}s; a run must not see the schema "
                "change under it. Run `reminders db upgrade` again once it has finished "
                "(`reminders lock status` shows the holder), or raise "
                "REMINDERS_MIGRATION_LOCK_WAIT_S"
            )
        time.sleep(_POLL_S)


def upgrade(
    url: str,
    revision: str = "head",
    *,
    lock_wait_s: float | None = None,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> tuple[str | None, str | None]:
    """Apply missing migrations; returns (revision before, revision after).

    With something to apply, waits up to lock_wait_s (default
    REMINDERS_MIGRATION_LOCK_WAIT_S) for the run lock; on_wait is told the holder
    once when it has to wait. Raises MigrationBlocked when the wait runs out.
    """
    wait_s = settings.MIGRATION_LOCK_WAIT_S.get() if lock_wait_s is None else lock_wait_s
    target_script = ScriptDirectory.from_config(_config()).get_revision(revision)
    target = target_script.revision if target_script is not None else None
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            took_run_lock = False
            try:
                with conn.begin():
                    raw.execute(query("take_migration_lock"), MIGRATION_LOCK.params())
                    before = _revision_of(conn)
                    if before != target:
                        what = f"from {before or 'nothing'} to {target}"
                        _take_run_lock(raw, url, wait_s, on_wait, what)
                        took_run_lock = True
                    command.upgrade(_config(conn), revision)
                    after = _revision_of(conn)
            finally:
                # After the commit: a run that takes the lock next sees the new schema.
                if took_run_lock and not raw.closed:
                    raw.rollback()
                    raw.execute(query("release_run_lock"), LOCK_KEY.params())
                    raw.commit()
        return before, after
    finally:
        engine.dispose()
