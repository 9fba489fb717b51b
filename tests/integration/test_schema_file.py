"""reminders_pipeline/db/schema.sql is the schema the migrations build."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from reminders_pipeline.db.migrate import head_revision
from reminders_pipeline.db.url import with_database
from tests.helpers.catalog import catalog, differences
from tests.helpers.schema_file import SCHEMA_FILE, generate

REGENERATE = "run `python3 dev.py schema` and commit reminders_pipeline/db/schema.sql"


@pytest.fixture
def empty_url(pg_server_url: str) -> Iterator[str]:
    name = f"reminders_s_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_built_from_the_file_equals_a_migrated_one(empty_url: str, db_url: str) -> None:
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(SCHEMA_FILE.read_text())
    migrated = catalog(db_url)
    assert migrated["version"] == [(head_revision(),)]
    assert differences(catalog(empty_url), migrated) == {}, REGENERATE


def test_the_file_is_what_dev_py_schema_writes() -> None:
    assert SCHEMA_FILE.read_text() == generate(), REGENERATE
