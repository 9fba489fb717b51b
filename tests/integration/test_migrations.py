"""Migrations: one command, idempotent, safe to run from two processes at once."""

from __future__ import annotations

import threading
import uuid

import psycopg

from reminders_pipeline.db.migrate import current_revision, head_revision, upgrade
from reminders_pipeline.db.url import with_database


def _fresh_database(pg_server_url: str) -> tuple[str, str]:
    name = f"reminders_m_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, with_database(pg_server_url, name)


def _drop(pg_server_url: str, name: str) -> None:
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_applies_everything_once_and_then_is_a_no_op(pg_server_url):
    name, url = _fresh_database(pg_server_url)
    try:
        assert current_revision(url) is None
        assert upgrade(url) == (None, head_revision())
        assert upgrade(url) == (head_revision(), head_revision())
        with psycopg.connect(url) as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            }
        assert {"assignments", "activities", "notifications", "reminder_runs"} <= tables
    finally:
        _drop(pg_server_url, name)


def test_concurrent_upgrades_wait_for_each_other(pg_server_url):
    name, url = _fresh_database(pg_server_url)
    results, errors = [], []

    def migrate() -> None:
        try:
            results.append(upgrade(url))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=migrate) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sorted(results, key=str) == sorted(
            [(None, head_revision()), (head_revision(), head_revision())], key=str
        )
    finally:
        _drop(pg_server_url, name)
