"""The optional hardening of db/hardening_advisory_locks.sql: once a superuser has
run it, the job, the migrations and the admin API still take their locks, and a
contacts login (or any other) can no longer take the run lock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

import reminders_pipeline.db as db_package
from reminders_pipeline.admin.app import create_app
from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.lock_keys import LOCK_KEY
from tests.helpers.admin_api import SETTINGS, TODAY, bearer, make_assignment, make_tokens
from tests.helpers.logins import as_login

HARDENING = Path(db_package.__file__).with_name("hardening_advisory_locks.sql")
TAKE_RUN_LOCK = (
    "SELECT pg_advisory_lock(%s, %s)",
    "SELECT pg_try_advisory_lock(%s, %s)",
    "SELECT pg_try_advisory_xact_lock(%s, %s)",
    "SELECT pg_advisory_xact_lock(%s, %s)",
)


def _harden(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(HARDENING.read_text())


def _can_take_run_lock(url: str, sql: str) -> bool:
    with psycopg.connect(url) as conn:
        try:
            conn.execute(sql, LOCK_KEY)
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


def test_before_the_hardening_any_login_takes_the_run_lock(db_url, logins):
    """What the hardening is for (and proof that the test below can fail)."""
    contacts = as_login(db_url, logins["reminders_contacts"])
    assert _can_take_run_lock(contacts, "SELECT pg_try_advisory_lock(%s, %s)")


def test_after_the_hardening_only_the_projects_roles_take_their_locks(db_url, db, logins, login):
    _harden(db_url)
    _harden(db_url)  # a second run changes nothing
    as_role = {role: as_login(db_url, name) for role, name in logins.items()}

    # The contacts role, and a login in no role, take no advisory lock at all.
    for url in (as_role["reminders_contacts"], as_login(db_url, login(None))):
        for sql in TAKE_RUN_LOCK:
            assert not _can_take_run_lock(url, sql), sql

    # The job runs (run lock, dispatch lock), as its role.
    assignment = make_assignment(db)
    summary = build_reminder_run(as_role["reminders_job"], SETTINGS).execute(TODAY)
    assert (summary.status, summary.created) == ("success", 1)

    # A correction takes the dispatch lock, as the API's role.
    tokens = make_tokens(db)
    with TestClient(create_app(as_role["reminders_admin_api"], SETTINGS)) as client:
        response = client.put(
            f"/assignments/{assignment}/last-contact-date",
            json={"last_contact_date": (TODAY - timedelta(days=1)).isoformat(), "reason": "r"},
            headers=bearer(tokens["both"]),
        )
        assert response.status_code == 200, response.text

    # The migrations' owner still takes the run lock and the migration lock.
    with psycopg.connect(as_role["reminders_owner"]) as conn:
        assert conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()[0]
        assert conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEY).fetchone()[0]
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK_KEY)
