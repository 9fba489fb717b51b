"""The schema check every command makes first: one query, no Alembic, the same verdicts."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from reminders_pipeline.db import schema_version
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.errors import ConfigError


def test_a_database_never_migrated_is_refused(empty_url: str) -> None:
    assert schema_version.database_revisions(empty_url) == []
    with pytest.raises(ConfigError, match="schema is at nothing, the code needs .*db upgrade"):
        schema_version.require_migrated(empty_url)


def test_an_older_schema_is_refused_and_the_head_passes(empty_url: str) -> None:
    upgrade(empty_url, "0002")
    with pytest.raises(ConfigError, match="schema is at 0002, the code needs"):
        schema_version.require_migrated(empty_url)
    upgrade(empty_url)
    assert schema_version.database_revisions(empty_url) == [schema_version.head_revision()]
    schema_version.require_migrated(empty_url)


def test_a_schema_newer_than_the_code_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"UPDATE {schema_version.VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(ConfigError, match="schema is at 9999"):
        schema_version.require_migrated(db_url)


def test_the_check_imports_neither_alembic_nor_sqlalchemy(db_url: str) -> None:
    script = (
        "import sys\n"
        "from reminders_pipeline.db.schema_version import require_migrated\n"
        f"require_migrated({db_url!r})\n"
        "print(sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
