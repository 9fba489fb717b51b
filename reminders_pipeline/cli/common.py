"""What the `reminders` commands share: JSON output, and `dagster` in a child process."""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from reminders_pipeline import settings

WORKSPACE_YAML = """\
# Written by `reminders ui`/`backfill`: the code location, named as in the repo's workspace.yaml.
load_from:
  - python_module:
      module_name: reminders_pipeline.orchestration.definitions
      location_name: reminders_pipeline
"""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_json_default))


def dagster_command(home: Path, url: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """`dagster ARGS -w WORKSPACE` (the dagster beside this Python, on the code location
    written into home) and its environment: the instance in home, the database at url."""
    workspace = home / "workspace.yaml"
    workspace.write_text(WORKSPACE_YAML)
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    env = settings.child_environment(DAGSTER_HOME=str(home), REMINDERS_DATABASE_URL=url)
    return [dagster, *args, "-w", str(workspace)], env
