"""The roles of migration 0007: the job and the admin API work as their roles, and
neither can do what is not theirs. Each logs in as a login of its own that is a
member of the role, as docs/operations.md tells operators to set them up."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo

from reminders_pipeline.admin.app import create_app
from reminders_pipeline.contacts.activities import ContactRegistrationService
from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import MIGRATIONS_DIR, upgrade
from reminders_pipeline.db.url import with_database
from reminders_pipeline.delivery.webhook import WebhookSender
from tests.helpers.admin_api import LAST, SETTINGS, TODAY, bearer, make_assignment, make_tokens
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET, ReminderReceiver
from tests.helpers.logins import as_login
from tests.helpers.outbox import due_reminders, make_deliverer

JOB = "reminders_job"
API = "reminders_admin_api"
CONTACTS = "reminders_contacts"


def refused(url: str, login: str, sql: str) -> bool:
    with psycopg.connect(as_login(url, login)) as conn:
        try:
            conn.execute(sql)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_the_job_runs_as_its_role_and_can_touch_nothing_else(db_url, db, logins):
    make_assignment(db)
    make_tokens(db)
    summary = build_reminder_run(as_login(db_url, logins[JOB]), SETTINGS).execute(TODAY)
    assert (summary.status, summary.created) == ("success", 1)

    assert refused(db_url, logins[JOB], "SELECT token_hash FROM admin_tokens")
    assert refused(db_url, logins[JOB], "ALTER TABLE assignments ADD COLUMN x int")
    assert refused(db_url, logins[JOB], "CREATE TABLE job_made (x int)")
    assert refused(db_url, logins[JOB], "DROP TABLE notifications")
    assert refused(db_url, logins[JOB], "UPDATE assignments SET last_contact_date = started_on")
    # It creates reminders and never changes one (no natural key rewritten after the fact).
    assert refused(db_url, logins[JOB], "UPDATE notifications SET sequence = sequence + 1")
    assert refused(db_url, logins[JOB], "INSERT INTO activities (assignment_id, occurred_on)"
                   " SELECT id, now()::date FROM assignments")  # fmt: skip
    assert refused(
        db_url,
        logins[JOB],
        "INSERT INTO admin_audit (token_name, assignment_id, new_value,"
        " reason) VALUES ('x', 1, now()::date, 'x')",
    )


def test_the_admin_api_runs_as_its_role_and_cannot_write_reminders(db_url, db, logins):
    assignment = make_assignment(db)
    tokens = make_tokens(db)
    with TestClient(create_app(as_login(db_url, logins[API]), SETTINGS)) as client:
        response = client.put(
            f"/assignments/{assignment}/last-contact-date",
            json={"last_contact_date": (TODAY - timedelta(days=1)).isoformat(), "reason": "r"},
            headers=bearer(tokens["both"]),
        )
        assert response.status_code == 200, response.text
        for path in (f"/assignments/{assignment}", "/runs", "/lock", "/audit"):
            assert client.get(path, headers=bearer(tokens["reader"])).status_code == 200, path
    [audit] = db_rows(db, "SELECT old_value FROM admin_audit")
    assert audit["old_value"] == LAST

    assert refused(
        db_url,
        logins[API],
        "INSERT INTO notifications (assignment_id, mentor_id, kind,"
        " due_on, silence_started_on, sequence) SELECT id, mentor_id, 'follow_up',"
        " now()::date, now()::date, 1 FROM assignments",
    )
    assert refused(db_url, logins[API], "UPDATE notifications SET state = 'sent'")
    assert refused(db_url, logins[API], "DELETE FROM admin_audit")
    assert refused(db_url, logins[API], "UPDATE assignments SET status = 'closed'")
    assert refused(
        db_url,
        logins[API],
        "INSERT INTO reminder_runs (status, as_of, trigger)"
        " VALUES ('running', now()::date, 'manual')",
    )
    assert refused(db_url, logins[API], "ALTER TABLE admin_tokens ADD COLUMN x int")


def test_the_deliverer_runs_as_the_job_role_and_the_api_role_cannot_touch_the_outbox(
    db_url, db, logins
):
    due_reminders(db, 2)
    with ReminderReceiver() as receiver:
        deliverer = make_deliverer(
            Database(as_login(db_url, logins[JOB])),
            {"webhook": WebhookSender(receiver.url(), SECRET, concurrency=2)},
            org_channels=["webhook"],
        )
        report = deliverer.drain()
        deliverer.close()
    assert report.totals() == {"sent": 2, "retry": 0, "dead": 0, "cancelled": 0}
    assert len(receiver.accepted) == 2

    assert refused(db_url, logins[JOB], "DELETE FROM deliveries")
    assert refused(db_url, logins[API], "UPDATE deliveries SET state = 'sent'")
    assert refused(db_url, logins[API], "UPDATE delivery_cursor SET last_notification_id = 0")


def test_contacts_are_registered_as_the_contacts_role_and_it_can_do_nothing_else(
    db_url, db, logins
):
    assignment = make_assignment(db)
    [mentor] = db_rows(db, "SELECT mentor_id FROM assignments WHERE id = %s", (assignment,))
    service = ContactRegistrationService(Database(as_login(db_url, logins[CONTACTS])), SETTINGS)
    service.register_direct(assignment, TODAY, mentor_id=mentor["mentor_id"])
    [row] = db_rows(db, "SELECT last_contact_date FROM assignments WHERE id = %s", (assignment,))
    assert row["last_contact_date"] == TODAY

    assert refused(db_url, logins[CONTACTS], "SELECT token_hash FROM admin_tokens")
    assert refused(db_url, logins[CONTACTS], "SELECT * FROM notifications")
    assert refused(db_url, logins[CONTACTS], "UPDATE assignments SET status = 'closed'")
    assert refused(db_url, logins[CONTACTS], "DELETE FROM activities")


@pytest.mark.parametrize("role", [JOB, API])
def test_the_tables_belong_to_the_migrations_owner(db, role):
    [row] = db_rows(
        db,
        "SELECT count(*) FILTER (WHERE pg_get_userbyid(relowner) = 'reminders_owner') AS owned,"
        " bool_or(pg_has_role(%s, relowner, 'USAGE')) AS role_owns"
        " FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
        " AND relname <> 'reminders_schema_version'",
        (role,),
    )
    assert row["owned"] >= 7 and not row["role_owns"]


def test_the_roles_migration_runs_again_where_the_roles_exist(db_url):
    # Roles are the server's: a second database (and a rerun) finds them made.
    sql_file = MIGRATIONS_DIR / "versions" / "0007_least_privilege_roles.sql"
    with psycopg.connect(db_url) as conn:
        conn.execute(sql_file.read_text())
        conn.execute("SET ROLE reminders_job")
        assert conn.execute("SELECT count(*) FROM assignments").fetchone()[0] >= 0


def test_a_user_who_owns_neither_the_database_nor_the_roles_can_migrate(pg_server_url):
    """No CREATEROLE, no superuser, the database and its schema someone else's: with
    the roles made already, 0007 grants on the tables this user made and leaves them
    its own (it cannot give them to reminders_owner here)."""
    suffix = uuid.uuid4().hex[:8]
    login, name = f"reminders_mig_t{suffix}", f"reminders_r_{suffix}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE reminders_owner')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(pg_server_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'GRANT CREATE ON SCHEMA public TO "{login}"')
        upgrade(make_conninfo(url, user=login))
        with psycopg.connect(url) as conn:
            owners = {
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
                    " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
                )
            }
            conn.execute("SET ROLE reminders_job")
            conn.execute("SELECT count(*) FROM assignments")
        assert owners == {login}
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{login}"')
