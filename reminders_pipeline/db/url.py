"""Where the reminders database is, as configured: REMINDERS_DATABASE_URL checked,
and whether this process is production (so no embedded server). Nothing here starts
a server: db/embedded.py does, in `ensure_database_url()`."""

from __future__ import annotations

from pathlib import Path

import psycopg
import yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reminders_pipeline import settings
from reminders_pipeline.errors import ConfigError

ENV_VAR = settings.DATABASE_URL.name


def validate_url(url: str, source: str = ENV_VAR) -> str:
    """Check that a connection string parses; the error names the setting, not the secret."""
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        # psycopg's message quotes the offending part, which may be the password.
        raise ConfigError(
            f"{source} is not a valid PostgreSQL connection string (expected "
            "postgresql://user:password@host:port/dbname, with special characters "
            "percent-encoded, or key=value pairs)"
        ) from None
    return url


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(url, dbname=dbname)


def describe(url: str) -> str:
    """host:port/dbname for messages, without the password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<malformed connection string>"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


def configured_database_url() -> str | None:
    """REMINDERS_DATABASE_URL, checked, or None when it is not set."""
    url = settings.DATABASE_URL.get()
    return None if url is None else validate_url(url)


def _instance_keeps_storage_in_postgres(instance_file: Path) -> bool:
    """Whether a Dagster instance file names Postgres storage (read as YAML, no Dagster)."""
    try:
        config = yaml.safe_load(instance_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False  # no file (SQLite defaults), or one Dagster itself will reject
    if not isinstance(config, dict):
        return False
    storage = config.get("storage")
    if isinstance(storage, dict) and "postgres" in storage:
        return True
    for key in ("run_storage", "event_log_storage", "schedule_storage"):
        section = config.get(key)
        if isinstance(section, dict) and "postgres" in str(section.get("module", "")):
            return True
    return False


def production_reason() -> str | None:
    """Why this process counts as production (so no embedded database), or None.

    Production is `REMINDERS_ENV=production`, or a Dagster instance (DAGSTER_HOME)
    on Postgres storage: its processes run on several hosts or containers, where a
    private embedded server would be an empty database nobody else sees.
    """
    if settings.is_production_env():
        return f"{settings.ENV.name}=production"  # even on a SQLite Dagster instance
    home = settings.dagster_home()
    if home and _instance_keeps_storage_in_postgres(Path(home) / "dagster.yaml"):
        return f"the Dagster instance in DAGSTER_HOME={home} keeps its storage in PostgreSQL"
    return None


def require_database_url_in_production() -> None:
    """Refuse to go on in a production process without REMINDERS_DATABASE_URL."""
    if settings.DATABASE_URL.is_set():
        return
    reason = production_reason()
    if reason is not None:
        raise ConfigError(
            f"{ENV_VAR} is not set, and this is a production process ({reason}): set "
            f"{ENV_VAR} to the reminders database. The embedded PostgreSQL is a "
            "development default only."
        )
