"""Is the database's schema the code's? One query, without Alembic.

Every command that works on the reminders database checks this first, and
`reminders run` is the one on a clock: importing Alembic and SQLAlchemy and
walking the revision scripts took a third of a second of each run. The head
revision is read from the migration files' `revision` and `down_revision`
lines (the ones Alembic reads too; tests/unit/test_schema_version.py holds the
two answers equal), the database's from the version table in one statement.
Applying migrations stays with db/migrate.py (Alembic).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from reminders_pipeline.db.connector import connect
from reminders_pipeline.db.embedded import ensure_database_url
from reminders_pipeline.errors import ConfigError, DatabaseError

VERSIONS_DIR = Path(__file__).with_name("migrations") / "versions"
# Alembic's version table for this project (db/migrate.py passes it to Alembic).
VERSION_TABLE = "reminders_schema_version"
UNDEFINED_TABLE = "42P01"

_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(?:None|['\"]([^'\"]+)['\"])", re.MULTILINE)


def _revision_links() -> dict[str, str | None]:
    """{revision: the revision it revises} for every migration file."""
    links: dict[str, str | None] = {}
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        text = path.read_text()
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            raise ConfigError(f"{path.name}: no `revision = ...` and `down_revision = ...` lines")
        links[revision.group(1)] = down.group(1)
    return links


@cache
def head_revision() -> str:
    """The one revision no other revises: the schema this code needs."""
    links = _revision_links()
    heads = sorted(set(links) - {down for down in links.values() if down})
    if len(heads) != 1:
        raise ConfigError(f"the migrations have {len(heads)} heads ({heads}); they must have one")
    return heads[0]


def database_revisions(url: str) -> list[str]:
    """The revisions the database's version table records (none before the first upgrade)."""
    with connect(url, autocommit=True) as session:
        try:
            rows = session.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        except DatabaseError as exc:
            if exc.sqlstate == UNDEFINED_TABLE:
                return []
            raise
    return sorted(row["version_num"] for row in rows)


def require_migrated(url: str) -> None:
    """Refuse to work on a database whose schema is not the code's."""
    current, head = database_revisions(url), head_revision()
    if current != [head]:
        shown = ", ".join(current) or "nothing"
        raise ConfigError(
            f"the reminders database schema is at {shown}, the code needs {head}: "
            "run `reminders db upgrade`"
        )


def ensure_migrated_database_url() -> str:
    """The reminders database's URL (ensure_database_url: the embedded server is
    started when none is configured), once its schema is known to be current."""
    url = ensure_database_url()
    require_migrated(url)
    return url
