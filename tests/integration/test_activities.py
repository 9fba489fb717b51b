"""Every registration path resets last_contact_date, through the database's own triggers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from reminders_pipeline.contacts.activities import Contact, ContactRegistrationService
from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.connector import Database
from reminders_pipeline.errors import ActivityRefused, ConfigError
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import add_assignment, add_mentor, db_rows

SETTINGS = ReminderSettings()
TODAY = SETTINGS.today()
LONG_AGO = TODAY - timedelta(days=30)


def last_contact(db: Database, assignment_id: int) -> date:
    return db_rows(db, "SELECT last_contact_date FROM assignments WHERE id = %s", (assignment_id,))[
        0
    ]["last_contact_date"]


def reminded_in_next_run(db_url: str, db: Database, as_of: date = TODAY) -> set[int]:
    """Run the reminders job for as_of; the assignments it created reminders for."""
    summary = build_reminder_run(db_url, SETTINGS).execute(as_of)
    assert summary.status == "success", summary
    rows = db_rows(
        db, "SELECT assignment_id FROM notifications WHERE run_id = %s", (summary.run_row_id,)
    )
    return {r["assignment_id"] for r in rows}


def activity(db: Database, activity_id: int) -> dict:
    return db_rows(db, "SELECT * FROM activities WHERE id = %s", (activity_id,))[0]


def execute(db: Database, sql: str, params: tuple = ()) -> None:
    with db.connection() as conn:
        conn.execute(sql, params)


@pytest.fixture
def service(db: Database) -> ContactRegistrationService:
    return ContactRegistrationService(db, SETTINGS)


@pytest.fixture
def mentor(db: Database) -> int:
    return add_mentor(db)


@pytest.fixture
def silent(db: Database, mentor: int) -> int:
    """An active assignment silent for 30 days: due today."""
    return add_assignment(db, mentor, LONG_AGO, started_on=LONG_AGO - timedelta(days=100))


@pytest.fixture
def control(db: Database, mentor: int) -> int:
    """Another silent assignment nobody contacts: proves the run did remind."""
    return add_assignment(db, mentor, LONG_AGO, started_on=LONG_AGO)


# ------------------------------------------------------------------ one test per path


def test_direct_registration_resets_last_contact_and_ends_the_silence(
    db_url, db, service, mentor, silent, control
):
    activity_id = service.register_direct(silent, TODAY - timedelta(days=1), mentor_id=mentor)

    assert last_contact(db, silent) == TODAY - timedelta(days=1)
    row = activity(db, activity_id)
    assert (row["registered_via"], row["registered_by"], row["kind"]) == (
        "direct",
        f"mentor:{mentor}",
        "contact",
    )
    assert reminded_in_next_run(db_url, db) == {control}


def test_proxy_registration_resets_last_contact_and_ends_the_silence(
    db_url, db, service, silent, control
):
    activity_id = service.register_proxy(silent, TODAY, registered_by="family member")

    assert last_contact(db, silent) == TODAY
    assert activity(db, activity_id)["registered_via"] == "proxy"
    assert reminded_in_next_run(db_url, db) == {control}


def test_coordinator_proxy_registration_resets_last_contact_and_ends_the_silence(
    db_url, db, service, silent, control
):
    activity_id = service.register_coordinator_proxy(
        silent, TODAY - timedelta(days=2), coordinator="coordinator-anna"
    )

    assert last_contact(db, silent) == TODAY - timedelta(days=2)
    row = activity(db, activity_id)
    assert (row["registered_via"], row["registered_by"]) == (
        "coordinator_proxy",
        "coordinator-anna",
    )
    assert reminded_in_next_run(db_url, db) == {control}


def test_bulk_registration_of_10000_resets_every_last_contact_in_one_call(
    db_url, db, service, mentor, control
):
    with db.connection() as conn:
        ids = [
            r["id"]
            for r in conn.execute(
                """
                INSERT INTO assignments (mentor_id, mentee_name, started_on, last_contact_date)
                SELECT %s, 'Person ' || g, %s, %s FROM generate_series(1, 10000) g
                RETURNING id
                """,
                (mentor, LONG_AGO, LONG_AGO),
            ).fetchall()
        ]
    # Spread the dates so each assignment's own date is checked, not one constant.
    contacts = [Contact(a, TODAY - timedelta(days=i % 5)) for i, a in enumerate(ids)]

    result = service.register_bulk(contacts, coordinator="coordinator-bo")

    assert len(result) == 10_000
    rows = db_rows(
        db,
        "SELECT id, last_contact_date FROM assignments WHERE id = ANY(%s) ORDER BY id",
        (ids,),
    )
    assert {r["id"]: r["last_contact_date"] for r in rows} == {
        c.assignment_id: c.occurred_on for c in contacts
    }
    via = db_rows(db, "SELECT registered_via, count(*) AS n FROM activities GROUP BY 1")
    assert via == [{"registered_via": "bulk", "n": 10_000}]
    assert reminded_in_next_run(db_url, db) == {control}


def test_a_row_written_without_the_services_resets_last_contact_too(db, silent):
    execute(
        db,
        "INSERT INTO activities (assignment_id, occurred_on, registered_via) "
        "VALUES (%s, %s, 'proxy')",
        (silent, TODAY),
    )
    assert last_contact(db, silent) == TODAY


def test_an_older_contact_does_not_move_last_contact_back(db, service, silent):
    service.register_proxy(silent, TODAY, registered_by="x")
    service.register_proxy(silent, TODAY - timedelta(days=3), registered_by="x")
    assert last_contact(db, silent) == TODAY


def test_activities_of_other_kinds_do_not_count_as_contact(db, silent):
    execute(
        db,
        "INSERT INTO activities (assignment_id, kind, occurred_on) VALUES (%s, 'note', %s)",
        (silent, TODAY),
    )
    assert last_contact(db, silent) == LONG_AGO


# ------------------------------------------------------------------ update and delete


def test_updating_the_latest_contact_date_moves_last_contact_both_ways(db_url, db, service, silent):
    first = service.register_proxy(silent, LONG_AGO + timedelta(days=5), registered_by="x")
    latest = service.register_proxy(silent, TODAY - timedelta(days=1), registered_by="x")
    assert last_contact(db, silent) == TODAY - timedelta(days=1)

    execute(db, "UPDATE activities SET occurred_on = %s WHERE id = %s", (TODAY, latest))
    assert last_contact(db, silent) == TODAY

    # Moved back before the other contact: that one is now the latest.
    execute(db, "UPDATE activities SET occurred_on = %s WHERE id = %s", (LONG_AGO, latest))
    assert last_contact(db, silent) == LONG_AGO + timedelta(days=5)
    assert activity(db, first)["occurred_on"] == LONG_AGO + timedelta(days=5)
    # 25 days silent again: due.
    assert silent in reminded_in_next_run(db_url, db)


def test_moving_a_contact_to_another_assignment_recomputes_both(db, mentor, service, silent):
    other = add_assignment(db, mentor, LONG_AGO, started_on=LONG_AGO - timedelta(days=1))
    moved = service.register_proxy(silent, TODAY, registered_by="x")

    execute(db, "UPDATE activities SET assignment_id = %s WHERE id = %s", (other, moved))

    assert last_contact(db, other) == TODAY
    # No contact left on the first one: back to its start.
    assert last_contact(db, silent) == LONG_AGO - timedelta(days=100)


def test_an_update_that_changes_nothing_relevant_leaves_last_contact_alone(db, service, silent):
    a = service.register_proxy(silent, TODAY, registered_by="x")
    execute(db, "UPDATE assignments SET last_contact_date = %s WHERE id = %s", (LONG_AGO, silent))
    execute(db, "UPDATE activities SET registered_by = 'y' WHERE id = %s", (a,))
    assert last_contact(db, silent) == LONG_AGO


def test_deleting_the_latest_contact_moves_back_to_the_previous_one(db_url, db, service, silent):
    service.register_proxy(silent, TODAY - timedelta(days=20), registered_by="x")
    latest = service.register_proxy(silent, TODAY, registered_by="x")
    assert silent not in reminded_in_next_run(db_url, db)

    execute(db, "DELETE FROM activities WHERE id = %s", (latest,))

    assert last_contact(db, silent) == TODAY - timedelta(days=20)
    assert silent in reminded_in_next_run(db_url, db)


def test_deleting_an_older_contact_leaves_last_contact_alone(db, service, silent):
    older = service.register_proxy(silent, TODAY - timedelta(days=20), registered_by="x")
    service.register_proxy(silent, TODAY, registered_by="x")
    execute(db, "DELETE FROM activities WHERE id = %s", (older,))
    assert last_contact(db, silent) == TODAY


def test_deleting_the_only_contact_moves_back_to_the_assignment_start(db, service, silent):
    only = service.register_proxy(silent, TODAY, registered_by="x")
    execute(db, "DELETE FROM activities WHERE id = %s", (only,))
    assert last_contact(db, silent) == LONG_AGO - timedelta(days=100)


def test_deleting_many_contacts_in_one_statement_recomputes_each_assignment(db, mentor, service):
    ids = [add_assignment(db, mentor, LONG_AGO, started_on=LONG_AGO) for _ in range(3)]
    for a in ids:
        service.register_proxy(a, TODAY - timedelta(days=2), registered_by="x")
        service.register_proxy(a, TODAY, registered_by="x")
    execute(
        db,
        "DELETE FROM activities WHERE assignment_id = ANY(%s) AND occurred_on = %s",
        (ids, TODAY),
    )
    assert [last_contact(db, a) for a in ids] == [TODAY - timedelta(days=2)] * 3


def test_a_manual_value_stays_until_a_later_contact_arrives(db, service, silent):
    """What the admin API's correction relies on (it writes assignments directly)."""
    service.register_proxy(silent, TODAY - timedelta(days=10), registered_by="x")
    execute(
        db,
        "UPDATE assignments SET last_contact_date = %s WHERE id = %s",
        (TODAY - timedelta(days=5), silent),
    )
    service.register_proxy(silent, TODAY - timedelta(days=7), registered_by="x")
    assert last_contact(db, silent) == TODAY - timedelta(days=5)

    service.register_proxy(silent, TODAY - timedelta(days=1), registered_by="x")
    assert last_contact(db, silent) == TODAY - timedelta(days=1)


# ------------------------------------------------------------------ refusals


def count_activities(db: Database) -> int:
    return db_rows(db, "SELECT count(*) AS n FROM activities")[0]["n"]


def test_a_future_date_is_refused_and_nothing_is_written(db, service, silent):
    with pytest.raises(ActivityRefused, match="in the future"):
        service.register_proxy(silent, TODAY + timedelta(days=1), registered_by="x")
    assert count_activities(db) == 0
    assert last_contact(db, silent) == LONG_AGO


def test_a_closed_assignment_is_refused(db, mentor, service):
    closed = add_assignment(db, mentor, LONG_AGO, status="closed")
    with pytest.raises(ActivityRefused, match=f"assignment {closed} .*closed"):
        service.register_coordinator_proxy(closed, TODAY, coordinator="c")
    assert count_activities(db) == 0


def test_a_paused_assignment_still_records_contact(db, mentor, service):
    paused = add_assignment(db, mentor, LONG_AGO, status="paused")
    service.register_proxy(paused, TODAY, registered_by="x")
    assert last_contact(db, paused) == TODAY


def test_an_unknown_assignment_is_refused(db, service):
    with pytest.raises(ActivityRefused, match="assignment 999999 .*no such assignment"):
        service.register_proxy(999_999, TODAY, registered_by="x")
    assert count_activities(db) == 0


def test_a_direct_registration_by_another_mentor_is_refused(db, service, silent):
    stranger = add_mentor(db, "Stranger")
    with pytest.raises(ActivityRefused, match="not this assignment's mentor"):
        service.register_direct(silent, TODAY, mentor_id=stranger)
    assert count_activities(db) == 0


def test_a_date_before_the_assignment_started_is_refused(db, service, silent):
    with pytest.raises(ActivityRefused, match="before the assignment started"):
        service.register_proxy(silent, LONG_AGO - timedelta(days=101), registered_by="x")


def test_one_bad_row_refuses_the_whole_bulk_and_names_it(db, mentor, service, silent):
    closed = add_assignment(db, mentor, LONG_AGO, status="closed")
    contacts = [
        Contact(silent, TODAY),
        Contact(closed, TODAY),
        Contact(silent, TODAY + timedelta(1)),
    ]

    with pytest.raises(ActivityRefused) as refused:
        service.register_bulk(contacts, coordinator="c")

    assert refused.value.refused == 2
    assert [(p["position"], p["problem"]) for p in refused.value.problems] == [
        (2, "closed_assignment"),
        (3, "future_date"),
    ]
    assert str(refused.value).startswith("2 of 3 contacts refused, nothing registered")
    assert count_activities(db) == 0
    assert last_contact(db, silent) == LONG_AGO


def test_who_registered_is_required(service, silent):
    with pytest.raises(ConfigError, match="who registers"):
        service.register_proxy(silent, TODAY, registered_by="  ")


def test_an_empty_bulk_writes_nothing(db, service):
    assert service.register_bulk([], coordinator="c") == []
    assert count_activities(db) == 0
