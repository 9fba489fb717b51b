"""A bulk registration racing a running reminders job.

The guarantee (docs/decisions/contact-reset-guarantee.md): a reminder is only
created by a dispatch batch whose snapshot did not yet contain the contact, so
it is for the silence that really happened and its transaction began before the
contact was committed; no batch that starts after the commit reminds for that
silence, and no later run does either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from reminders_pipeline.contacts.activities import Contact, ContactRegistrationService
from reminders_pipeline.core.dispatch import ReminderDispatchService
from reminders_pipeline.core.due import ReminderSchedulerService
from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.core.run import ReminderRun
from reminders_pipeline.core.runlog import RunLog
from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.connector import Database, connect
from reminders_pipeline.db.queries import query
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import add_mentor, db_rows

SETTINGS = ReminderSettings(batch_size=100)
TODAY = SETTINGS.today()
LONG_AGO = TODAY - timedelta(days=30)
COUNT = 1_000


class BatchHookLock(RunLock):
    """The real run lock, plus a hook called before each dispatch batch (1, 2, ...)."""

    def __init__(self, url: str, before_batch: Callable[[int], None]) -> None:
        super().__init__(url, None)
        self.before_batch = before_batch
        self.batches = 0

    def ensure_held(self) -> None:
        super().ensure_held()
        self.batches += 1
        self.before_batch(self.batches)


def run_with_hook(db_url: str, db: Database, before_batch: Callable[[int], None]):
    run = ReminderRun(
        lock=BatchHookLock(db_url, before_batch),
        runlog=RunLog(db),
        scheduler=ReminderSchedulerService(db, SETTINGS),
        dispatcher=ReminderDispatchService(db, SETTINGS),
    )
    return run.execute(TODAY)


def server_now(db: Database) -> datetime:
    return db_rows(db, "SELECT clock_timestamp() AS t")[0]["t"]


def reminders(db: Database) -> list[dict]:
    return db_rows(
        db,
        "SELECT assignment_id, silence_started_on, created_at FROM notifications "
        "ORDER BY assignment_id",
    )


@pytest.fixture
def due_assignments(db: Database) -> list[int]:
    """COUNT active assignments, all silent for 30 days (due today), in id order."""
    mentor = add_mentor(db)
    with db.connection() as conn:
        rows = conn.execute(
            """
            INSERT INTO assignments (mentor_id, mentee_name, started_on, last_contact_date)
            SELECT %s, 'Person ' || g, %s, %s FROM generate_series(1, %s) g
            RETURNING id
            """,
            (mentor, LONG_AGO, LONG_AGO, COUNT),
        ).fetchall()
    return sorted(r["id"] for r in rows)


def assert_nothing_due_later(db_url: str, db: Database) -> None:
    """The next day's run finds no silence to remind about: every contact counted."""
    summary = build_reminder_run(db_url, SETTINGS).execute(TODAY + timedelta(days=1))
    assert (summary.status, summary.selected, summary.created) == ("success", 0, 0)


def test_a_run_during_an_uncommitted_bulk_registration_reminds_for_the_silence_it_saw(
    db_url, db, due_assignments
):
    registration = connect(db_url)
    try:
        # The bulk statement itself (triggers included), left uncommitted.
        registration.execute(
            query("register_contacts"),
            {
                "assignment_ids": due_assignments,
                "occurred_on": [TODAY] * COUNT,
                "mentor_id": None,
                "today": TODAY,
                "registered_via": "bulk",
                "registered_by": "coordinator",
            },
        )
        # The run is not blocked by the registration's row locks, and does not see it.
        summary = build_reminder_run(db_url, SETTINGS).execute(TODAY)
        assert (summary.status, summary.created) == ("success", COUNT)
        registration.commit()
        committed_at = server_now(db)
    finally:
        registration.close()

    rows = reminders(db)
    assert {r["silence_started_on"] for r in rows} == {LONG_AGO}
    assert all(r["created_at"] < committed_at for r in rows)
    assert_nothing_due_later(db_url, db)


def test_a_registration_committed_between_batches_stops_reminders_from_the_next_batch_on(
    db_url, db, due_assignments
):
    service = ContactRegistrationService(db, SETTINGS)
    committed_at: list[datetime] = []

    def register_before_fourth_batch(batch: int) -> None:
        if batch == 4:
            service.register_bulk(
                [Contact(a, TODAY) for a in due_assignments], coordinator="coordinator"
            )
            committed_at.append(server_now(db))

    summary = run_with_hook(db_url, db, register_before_fourth_batch)

    assert summary.status == "success"
    rows = reminders(db)
    # Three batches of 100 ran before the commit; none after it reminded anyone.
    assert [r["assignment_id"] for r in rows] == due_assignments[:300]
    assert {r["silence_started_on"] for r in rows} == {LONG_AGO}
    assert all(r["created_at"] < committed_at[0] for r in rows)
    assert_nothing_due_later(db_url, db)


def test_concurrent_bulk_registrations_never_yield_a_reminder_after_their_commit(
    db_url, db, due_assignments
):
    """Free-running threads with real connections; the invariant is checked per reminder."""
    service = ContactRegistrationService(db, SETTINGS)
    chunks = [due_assignments[i::10] for i in range(10)]  # each chunk spans every batch
    committed_at: dict[int, datetime] = {}
    errors: list[BaseException] = []
    started = threading.Event()

    def register() -> None:
        try:
            started.wait(10)
            for chunk in chunks:
                service.register_bulk([Contact(a, TODAY) for a in chunk], coordinator="c")
                at = server_now(db)
                committed_at.update(dict.fromkeys(chunk, at))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    def signal_start(batch: int) -> None:
        if batch == 1:
            started.set()

    registrar = threading.Thread(target=register)
    registrar.start()
    summary = run_with_hook(db_url, db, signal_start)
    registrar.join(60)

    assert not errors, errors
    assert summary.status == "success"
    assert len(committed_at) == COUNT
    for r in reminders(db):
        assert r["silence_started_on"] == LONG_AGO
        assert r["created_at"] < committed_at[r["assignment_id"]], r
    assert_nothing_due_later(db_url, db)
