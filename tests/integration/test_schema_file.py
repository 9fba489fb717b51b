"""reminders_pipeline/db/schema.sql is the schema the migrations build."""

from __future__ import annotations

import psycopg

from reminders_pipeline.db.migrate import head_revision
from tests.helpers.catalog import catalog, differences
from tests.helpers.schema_file import SCHEMA_FILE, generate

REGENERATE = "run `python3 dev.py schema` and commit reminders_pipeline/db/schema.sql"


def test_a_database_built_from_the_file_equals_a_migrated_one(empty_url: str, db_url: str) -> None:
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(SCHEMA_FILE.read_text())
    migrated = catalog(db_url)
    assert migrated["version"] == [(head_revision(),)]
    assert differences(catalog(empty_url), migrated) == {}, REGENERATE


def test_the_file_is_what_dev_py_schema_writes() -> None:
    assert SCHEMA_FILE.read_text() == generate(), REGENERATE
