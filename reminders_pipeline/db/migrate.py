"""Versioned schema migrations, run by Alembic over plain .sql files.

Each revision in migrations/versions/ is a tiny Python file beside a .sql file of
the same name; `reminders db upgrade` applies what is missing, once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg.rows import tuple_row
from sqlalchemy.pool import NullPool

from reminders_pipeline.db.connector import raw_connection
from reminders_pipeline.db.lock_keys import MIGRATION_LOCK
from reminders_pipeline.db.url import database_url
from reminders_pipeline.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "reminders_schema_version"


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
        creator=lambda: raw_connection(url, row_factory=tuple_row),
        poolclass=NullPool,
    )


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current_revision(url: str) -> str | None:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply missing migrations; returns (revision before, revision after)."""
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK[0]}, {MIGRATION_LOCK[1]})"
            )
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            before = ctx.get_current_revision()
            command.upgrade(_config(conn), revision)
            after = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE}
            ).get_current_revision()
        return before, after
    finally:
        engine.dispose()


def require_migrated(url: str) -> None:
    """Refuse to work on a database whose schema is not the code's."""
    current, head = current_revision(url), head_revision()
    if current != head:
        raise ConfigError(
            f"the reminders database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `reminders db upgrade`"
        )


def migrated_database_url() -> str:
    """The reminders database's URL, once its schema is known to be current."""
    url = database_url()
    require_migrated(url)
    return url
