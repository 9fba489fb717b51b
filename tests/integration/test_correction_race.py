"""A correction racing a dispatch batch, and back-dated contacts: never a second
reminder the same day (docs/decisions/contact-reset-guarantee.md, Decision 4).

A batch whose INSERT snapshot predated a correction's commit used to insert the
old silence's reminder after the correction had counted; the new silence was
then due again. Now the batch holds the dispatch lock shared and the correction
takes it exclusive first: the correction waits for the batch (or times out) and
counts what it inserted. Two real connections; the batch is held open by a third
one holding a copy of another assignment's reminder uncommitted (its INSERT then
waits on the natural key).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import psycopg
import pytest

from reminders_pipeline.contacts.activities import Contact, ContactRegistrationService
from reminders_pipeline.core.dispatch import FOLLOW_UP_REMINDER
from reminders_pipeline.errors import DatabaseError
from tests.helpers.corrections import (
    INTERVAL,
    SETTINGS,
    START,
    D,
    correct,
    run,
    sent,
)
from tests.helpers.data import add_assignment, add_mentor, db_rows

LAST = D - timedelta(days=2 * INTERVAL)  # #1 due D - 7, #2 due D


def _token(db) -> None:
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO admin_tokens (name, key_id, token_hash, scopes)"
            " VALUES ('corrector', 'k1', '\\x00', '{correct}')"
        )


def _waiting(url: str, what: str) -> None:
    """Until a session of this database waits on a lock, its query containing `what`."""
    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND position(%s in query) > 0",
            (what,),
        ).fetchone():
            assert time.monotonic() < deadline, f"nothing waits on {what!r}"
            time.sleep(0.02)


@pytest.mark.parametrize("bounded", [False, True], ids=["waits", "times-out"])
def test_a_correction_during_a_batch_never_gives_a_second_reminder(
    db, db_url, bounded, monkeypatch
) -> None:
    _token(db)
    mentor = add_mentor(db)
    # Same batch (batch_size 2): `blocked` holds the batch open, `corrected` is corrected.
    blocked = add_assignment(db, mentor, LAST, started_on=START)
    corrected = add_assignment(db, mentor, LAST, started_on=START)
    run(db_url, D - timedelta(days=INTERVAL))

    holder = psycopg.connect(db_url)
    today = threading.Thread(target=run, args=(db_url, D))
    waited = True
    try:
        holder.execute(
            "INSERT INTO notifications (assignment_id, mentor_id, kind, due_on,"
            " silence_started_on, sequence) VALUES (%s, %s, %s, %s, %s, 2)",
            (blocked, mentor, FOLLOW_UP_REMINDER, D, LAST),
        )
        today.start()
        _waiting(db_url, "INSERT INTO notifications")
        if bounded:
            # As the admin API: lock_timeout bounds the wait (409 with Retry-After).
            monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=300")
            with pytest.raises(DatabaseError) as refused:
                correct(db, corrected, LAST - timedelta(days=1))
            monkeypatch.delenv("PGOPTIONS")
            assert refused.value.sqlstate == "55P03"
        else:
            correcting = threading.Thread(
                target=correct, args=(db, corrected, LAST - timedelta(days=1))
            )
            correcting.start()
            correcting.join(timeout=1)
            waited = correcting.is_alive()
            holder.rollback()
            correcting.join()
    finally:
        holder.close()
        if today.is_alive():
            today.join()
    run(db_url, D)
    run(db_url, D + timedelta(days=1))
    reminders = sent(db, corrected)
    assert reminders == [(D - timedelta(days=INTERVAL), 1), (D, 2)]
    assert max(Counter(day for day, _ in reminders).values()) == 1
    assert waited, "the correction did not wait for the batch in flight"


def test_back_dated_contacts_never_give_a_second_reminder(db, db_url) -> None:
    """A contact that moves last_contact_date to a day before reminders already
    sent carries them, as a correction does: by every registration path, after a
    backward correction too; a contact after the last reminder starts afresh."""
    _token(db)
    mentor = add_mentor(db)
    paths = ("direct", "proxy", "coordinator_proxy", "bulk", "after_correction", "normal")
    ids = {name: add_assignment(db, mentor, LAST, started_on=START) for name in paths}
    run(db_url, D - timedelta(days=INTERVAL))
    run(db_url, D)  # #1 on D - 7, #2 on D for each

    contacts = ContactRegistrationService(db, SETTINGS)
    late = D - timedelta(days=INTERVAL)  # registered late, dated one interval ago
    contacts.register_direct(ids["direct"], late, mentor_id=mentor)
    contacts.register_proxy(ids["proxy"], late, registered_by="partner")
    contacts.register_coordinator_proxy(ids["coordinator_proxy"], late, coordinator="coord")
    contacts.register_bulk([Contact(ids["bulk"], late)], coordinator="coord")
    # The reviewer's case: back three days, then a contact between the two dates.
    correct(db, ids["after_correction"], LAST - timedelta(days=3))
    contacts.register_direct(ids["after_correction"], LAST - timedelta(days=1), mentor_id=mentor)
    contacts.register_direct(ids["normal"], D, mentor_id=mentor)

    for day in (0, 1, 7, 8, 14, 21, 28):
        run(db_url, D + timedelta(days=day))
    after = {name: sent(db, a)[2:] for name, a in ids.items()}
    week = timedelta(days=INTERVAL)
    carried_one = [(D + week, 2), (D + 2 * week, 3)]
    assert after == {
        # Silence D - 7 with #2 (D) carried: numbering and the cap go on from it.
        "direct": carried_one,
        "proxy": carried_one,
        "coordinator_proxy": carried_one,
        "bulk": carried_one,
        # Silence D - 15 with #1 and #2 carried: #3 an interval after #2.
        "after_correction": [(D + week, 3)],
        # Nothing sent after D: a fresh silence, #1 one interval later.
        "normal": [(D + week, 1), (D + 2 * week, 2), (D + 3 * week, 3)],
    }
    for name, assignment in ids.items():
        assert max(Counter(day for day, _ in sent(db, assignment)).values()) == 1, name
    normal = db_rows(db, "SELECT * FROM assignments WHERE id = %s", (ids["normal"],))[0]
    assert (normal["carried_for"], normal["carried_reminders"]) == (None, None)
