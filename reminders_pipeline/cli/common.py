"""What the `reminders` commands share: JSON output.

Imported inside the commands that need them, so that every other command starts
quickly: db.migrate (Alembic, SQLAlchemy) and orchestration (Dagster). The
schema check (db.schema_version) is one query, no Alembic.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import click


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_json_default))
