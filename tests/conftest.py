"""Shared fixtures: a PostgreSQL server, a migrated template, and one fresh database per test.

The server is REMINDERS_TEST_DATABASE_URL when set (any database on it; tests
create their own), otherwise an embedded PostgreSQL started for the session.
Each test that asks for `db_url` gets `CREATE DATABASE ... TEMPLATE` of a
database migrated once: fast, isolated, and commits are real (lock tests need
that).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.embedded import start_embedded, stop_embedded
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.db.url import with_database
from tests.helpers.runs import RemindersCli

# A suite started in the background (`.ci/run &`, nohup, some CI agents) inherits
# SIGINT ignored, and so would every process it starts: `dagster dev` would ignore
# the tests' Ctrl-C. Children get the default action back from a handled SIGINT.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TEST_URL_VAR = "REMINDERS_TEST_DATABASE_URL"


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A URL to a maintenance database on the test server."""
    url = os.environ.get(TEST_URL_VAR)
    if url:
        yield url
        return
    # Not under pytest's basetemp: another pytest session starting meanwhile resets
    # /tmp/pytest-of-<user> to 0700, the server's own (non-root) user can no longer
    # reach its data folder, and the server shuts itself down.
    base = Path(tempfile.mkdtemp(prefix="reminders-test-pg-"))
    pgdata = base / "pgdata"
    try:
        yield with_database(start_embedded(pgdata), "postgres")
    finally:
        stop_embedded(pgdata, force=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    name = f"reminders_tpl_{os.getpid()}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(with_database(pg_server_url, name))
    yield name
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test only."""
    name = f"reminders_t_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield with_database(pg_server_url, name)
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_url(pg_server_url: str) -> Iterator[str]:
    """An empty database (never migrated) for this test only."""
    name = f"reminders_e_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_url, name)
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(db_url: str) -> Database:
    return Database(db_url)


@pytest.fixture
def reminders_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for code and subprocesses under test: this test's database and homes."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        "REMINDERS_DATABASE_URL": db_url,
        "REMINDERS_HOME": str(tmp_path / "reminders_home"),
        "DAGSTER_HOME": str(dagster_home),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def reminders_cli(reminders_env: dict[str, str], tmp_path: Path) -> Iterator[RemindersCli]:
    """Run the `reminders` command as a child process against this test's database."""
    with RemindersCli.for_test(reminders_env, tmp_path) as cli:
        yield cli
