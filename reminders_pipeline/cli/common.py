"""What the `reminders` commands share: the database URL, JSON output, schema checks."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import click

from reminders_pipeline import settings as registry
from reminders_pipeline.db.embedded import ensure_database_url
from reminders_pipeline.db.schema_version import require_migrated

# Imported inside the commands that need them, so that every other command starts
# quickly: db.migrate (Alembic, SQLAlchemy) and orchestration.launch (Dagster).
# The schema check is one query (schema_version), no Alembic.


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, default=json_default))


def embedded_in_use() -> bool:
    return not registry.DATABASE_URL.is_set()


__all__ = [
    "ensure_database_url",
    "embedded_in_use",
    "json_default",
    "print_json",
    "require_migrated",
]
