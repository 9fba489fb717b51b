"""What the `reminders` commands share: the database URL, JSON output, schema checks."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import click

from reminders_pipeline import settings as registry
from reminders_pipeline.db.url import database_url

# Imported inside the commands that need them, so that every other command starts
# quickly: db.migrate (Alembic, SQLAlchemy) and orchestration.launch (Dagster).


def require_migrated(url: str) -> None:
    # One query; Alembic stays out of every command but `db upgrade`.
    from reminders_pipeline.db import schema_version

    schema_version.require_migrated(url)


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, default=json_default))


def embedded_in_use() -> bool:
    return not registry.DATABASE_URL.is_set()


__all__ = [
    "database_url",
    "embedded_in_use",
    "json_default",
    "print_json",
    "require_migrated",
]
