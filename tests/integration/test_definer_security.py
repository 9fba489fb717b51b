"""Migration 0010: a SECURITY DEFINER function gives no role more than it had, and
the admin API's role can neither mint nor revive a token.

Each attack logs in as a new LOGIN role that is a member of one of the project's
roles (or of none), as an operator would set one up, and checks the server's
catalog afterwards: the attacker is no superuser, whatever ran in its trap."""

from __future__ import annotations

import psycopg
import pytest

from reminders_pipeline.contacts.activities import ContactRegistrationService
from reminders_pipeline.db.connector import Database
from tests.helpers.admin_api import SETTINGS, TODAY, make_assignment, make_tokens
from tests.helpers.data import db_rows
from tests.helpers.logins import as_login

OWNER = "reminders_owner"
API = "reminders_admin_api"
CONTACTS = "reminders_contacts"
DEFINER = "reminders_definer"
SENT_SINCE = "public.reminders_sent_since(bigint, date)"


def is_superuser(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (name,)).fetchone()[
            0
        ]


def _plant_trap(conn: psycopg.Connection, attacker: str) -> None:
    """A function that records who runs it and tries to make `attacker` superuser."""
    conn.execute("CREATE TABLE public.trap_evidence (who text)")
    conn.execute("GRANT INSERT ON public.trap_evidence TO PUBLIC")
    conn.execute(
        f"""
        CREATE FUNCTION public.trap() RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO public.trap_evidence VALUES (current_user);
            BEGIN
                ALTER ROLE "{attacker}" SUPERUSER;
            EXCEPTION WHEN insufficient_privilege THEN
                NULL;
            END;
            RETURN true;
        END
        $$"""
    )


def _a_reminder(db: Database) -> int:
    """An assignment with one reminder: the trap runs once per row it filters."""
    assignment = make_assignment(db)
    db_rows(
        db,
        "INSERT INTO notifications (assignment_id, mentor_id, kind, due_on,"
        " silence_started_on, sequence) SELECT id, mentor_id, 'follow_up',"
        " last_contact_date + 10, last_contact_date, 1 FROM assignments WHERE id = %s"
        " RETURNING id",
        (assignment,),
    )
    return assignment


def _evidence(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT who FROM public.trap_evidence")]


def test_a_table_owner_cannot_become_superuser_through_a_view_in_the_functions_way(
    db_url, db, login
):
    """The rename-and-view trick, left in place: the function, and a contact
    registration by the contacts role, run the trap as a role that gains nothing."""
    assignment = _a_reminder(db)
    attacker = login(OWNER)
    with psycopg.connect(as_login(db_url, attacker), autocommit=True) as conn:
        _plant_trap(conn, attacker)
        conn.execute("ALTER TABLE public.notifications RENAME TO notifications_real")
        conn.execute(
            "CREATE VIEW public.notifications AS"
            " SELECT * FROM public.notifications_real WHERE public.trap()"
        )
        # Whoever the function runs as may read the view (and so run the trap).
        conn.execute("GRANT SELECT ON public.notifications TO PUBLIC")
        conn.execute("SELECT * FROM public.reminders_sent_since(%s, '2000-01-01')", (assignment,))
    assert not is_superuser(db_url, attacker)
    ran_as = _evidence(db_url)
    assert ran_as and set(ran_as) == {DEFINER}  # the trap ran, as the definer role

    # Any contact registration calls the function from the triggers.
    contacts = login(CONTACTS)
    [mentor] = db_rows(db, "SELECT mentor_id FROM assignments WHERE id = %s", (assignment,))
    service = ContactRegistrationService(Database(as_login(db_url, contacts)), SETTINGS)
    service.register_direct(assignment, TODAY, mentor_id=mentor["mentor_id"])
    assert not is_superuser(db_url, attacker)
    # Whatever the trigger's call ran of the trap (it may scan no row of the view, as
    # on the embedded server: the count is not asserted), it ran as the definer only.
    assert set(_evidence(db_url)) == {DEFINER}


def test_a_temporary_view_is_not_found_by_the_function(db_url, db, login):
    """The search_path variant: the table renamed away, a temporary view of its name.
    The function names public.notifications, so it finds no such relation."""
    assignment = _a_reminder(db)
    attacker = login(OWNER)
    with psycopg.connect(as_login(db_url, attacker), autocommit=True) as conn:
        _plant_trap(conn, attacker)
    with psycopg.connect(as_login(db_url, attacker)) as conn:
        conn.execute("ALTER TABLE public.notifications RENAME TO notifications_real")
        conn.execute(
            "CREATE TEMPORARY VIEW notifications AS"
            " SELECT * FROM public.notifications_real WHERE public.trap()"
        )
        conn.execute("GRANT SELECT ON pg_temp.notifications TO PUBLIC")
        try:
            conn.execute(
                "SELECT * FROM public.reminders_sent_since(%s, '2000-01-01')", (assignment,)
            )
        except psycopg.errors.UndefinedTable:
            conn.rollback()  # public.notifications: renamed away
        else:
            conn.commit()  # whatever the trap did stays
    assert not is_superuser(db_url, attacker)
    assert _evidence(db_url) == []


def test_a_login_without_grants_cannot_execute_the_function(db_url, db, login):
    assignment = make_assignment(db)
    stranger = login(None)
    with (
        psycopg.connect(as_login(db_url, stranger)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT * FROM public.reminders_sent_since(%s, '2000-01-01')", (assignment,))


def test_the_api_role_cannot_mint_or_revive_a_token(db_url, db, login):
    make_tokens(db)  # 'old' is revoked
    api = login(API)
    with psycopg.connect(as_login(db_url, api)) as conn:
        for sql in (
            "INSERT INTO admin_tokens (name, key_id, token_hash, scopes)"
            " VALUES ('mine', '0123456789abcdef', '\\x00', '{read,correct}')",
            "UPDATE admin_tokens SET revoked_at = NULL WHERE name = 'old'",
            "UPDATE admin_tokens SET token_hash = '\\x00' WHERE name = 'ops'",
            "UPDATE admin_tokens SET scopes = '{read,correct}' WHERE name = 'reader'",
            "DELETE FROM admin_tokens",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
            conn.rollback()
        # What it needs: find a token and stamp its use.
        conn.execute("UPDATE admin_tokens SET last_used_at = now() WHERE name = 'ops'")
        assert conn.execute("SELECT count(*) FROM admin_tokens").fetchone()[0] == 4
    [old] = db_rows(db, "SELECT revoked_at FROM admin_tokens WHERE name = 'old'")
    assert old["revoked_at"] is not None


def test_every_security_definer_function_is_held_to_the_rules(db):
    """A new SECURITY DEFINER function in the schema must follow 0010 or this fails."""
    rows = db_rows(
        db,
        """
        SELECT p.oid::regprocedure::text AS fn, r.rolname AS owner,
               r.rolsuper OR r.rolcanlogin OR r.rolcreaterole OR r.rolbypassrls AS mighty,
               EXISTS (SELECT FROM pg_class c WHERE c.relowner = p.proowner) AS owns_tables,
               EXISTS (SELECT FROM pg_auth_members m WHERE m.member = p.proowner) AS in_roles,
               (SELECT option_value FROM pg_options_to_table(p.proconfig)
                WHERE option_name = 'search_path') AS search_path,
               p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a
                                           WHERE a.grantee = 0) AS public_execute
        FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
        WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
        """,
    )
    assert "reminders_sent_since(bigint,date)" in {r["fn"] for r in rows}
    for row in rows:
        assert not row["mighty"], row
        assert not row["owns_tables"], row
        assert not row["in_roles"], row
        assert not row["public_execute"], row
        path = [s.strip() for s in (row["search_path"] or "").split(",")]
        assert path[0] == "pg_catalog" and path[-1] == "pg_temp", row
