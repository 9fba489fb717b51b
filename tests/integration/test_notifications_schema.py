"""Migration 0005 on a seeded database holding reminders; what a broken row gets now;
`reminders prune`."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from reminders_pipeline.core.dispatch import ReminderDispatchService
from reminders_pipeline.core.prune import prune_cutoff, prune_reminders
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import head_revision, upgrade
from reminders_pipeline.db.seed import seed
from reminders_pipeline.errors import ConfigError, DatabaseError
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import add_assignment, add_mentor, db_rows
from tests.helpers.migration_data import AS_OF, add_runs_and_reminders
from tests.helpers.runs import seed_assignments

ALL_COLUMNS = "SELECT * FROM notifications ORDER BY id"


def _schema(url: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(url) as conn:
        constraints = {
            r[0]
            for r in conn.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'notifications'::regclass"
            )
        }
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'notifications'"
            )
        }
    return constraints, indexes


def test_0005_keeps_every_reminder_and_only_the_read_costs(empty_url):
    upgrade(empty_url, "0004")
    seed_assignments(Database(empty_url), 3000, 0.4, AS_OF)
    created = add_runs_and_reminders(empty_url, AS_OF + timedelta(days=5), "m")
    assert created > 500
    with psycopg.connect(empty_url) as conn:
        before = conn.execute(ALL_COLUMNS).fetchall()
    upgrade(empty_url)
    with psycopg.connect(empty_url) as conn:
        after = conn.execute(ALL_COLUMNS).fetchall()
        assert (
            conn.execute(
                "SELECT count(*) FROM assignments WHERE carried_for IS NOT NULL"
            ).fetchone()[0]
            == 0
        )
    assert head_revision() >= "0005"
    assert after == before  # every column of every row
    constraints, indexes = _schema(empty_url)
    assert indexes == {
        "notifications_pkey",
        "notifications_natural_key",
        "notifications_created_brin",
    }
    foreign = {c for c in constraints if c.startswith("FOREIGN KEY")}
    assert foreign == {"FOREIGN KEY (assignment_id) REFERENCES assignments(id)"}


def _insert(db: Database, **values) -> None:
    row = {
        "kind": "follow_up_reminder",
        "due_on": date(2026, 1, 11),
        "silence_started_on": date(2026, 1, 1),
        "sequence": 1,
        "run_id": None,
    } | values
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO notifications (assignment_id, mentor_id, kind, due_on,"
            " silence_started_on, sequence, run_id)"
            " VALUES (%(assignment_id)s, %(mentor_id)s, %(kind)s, %(due_on)s,"
            " %(silence_started_on)s, %(sequence)s, %(run_id)s)",
            row,
        )


def test_a_broken_row_gets_what_the_schema_now_says(db):
    mentor = add_mentor(db)
    assignment = add_assignment(db, mentor, date(2026, 1, 1))
    # Kept: no reminder for an assignment that does not exist, no second copy, no number 0.
    with pytest.raises(DatabaseError, match="notifications_assignment_id_fkey"):
        _insert(db, assignment_id=assignment + 1000, mentor_id=mentor)
    _insert(db, assignment_id=assignment, mentor_id=mentor)
    with pytest.raises(DatabaseError, match="notifications_natural_key"):
        _insert(db, assignment_id=assignment, mentor_id=mentor)
    with pytest.raises(DatabaseError, match="notifications_sequence_check"):
        _insert(db, assignment_id=assignment, mentor_id=mentor, sequence=0)
    # Given up (0005): mentor_id and run_id are copies the dispatch statement writes
    # from the assignment row and the run row it has just inserted; a hand-written row
    # with others is accepted. Readers take the mentor from the assignment.
    _insert(db, assignment_id=assignment, mentor_id=mentor + 1000, run_id=424242, sequence=2)
    [row] = db_rows(db, "SELECT mentor_id, run_id FROM notifications WHERE sequence = 2")
    assert (row["mentor_id"], row["run_id"]) == (mentor + 1000, 424242)


def test_prune_deletes_only_old_reminders_of_finished_silences(db):
    mentor = add_mentor(db)
    ended = add_assignment(db, mentor, date(2026, 3, 1))  # silence of Jan 1 is over
    running = add_assignment(db, mentor, date(2026, 1, 1))  # still silent since Jan 1
    for assignment in (ended, running):
        for sequence in (1, 2, 3):
            _insert(db, assignment_id=assignment, mentor_id=mentor, sequence=sequence)
    _insert(db, assignment_id=ended, mentor_id=mentor, silence_started_on=date(2026, 3, 1))
    old = datetime(2026, 2, 1, tzinfo=UTC)
    with db.connection() as conn:
        conn.execute("UPDATE notifications SET state = 'delivered', created_at = %s", (old,))
        # Not delivered yet: stays whatever its age.
        conn.execute(
            "UPDATE notifications SET state = 'pending' WHERE assignment_id = %s AND sequence = 3",
            (ended,),
        )
        # The newest reminder is recent.
        conn.execute(
            "UPDATE notifications SET created_at = now() WHERE silence_started_on = '2026-03-01'"
        )
    _expanded_by_the_deliverer(db)
    cutoff = old + timedelta(days=1)
    assert prune_reminders(db, cutoff, batch_size=1) == 2
    left = db_rows(
        db,
        "SELECT assignment_id, silence_started_on, sequence FROM notifications"
        " ORDER BY assignment_id, silence_started_on, sequence",
    )
    assert [(r["assignment_id"], r["sequence"]) for r in left] == [
        (ended, 3),
        (ended, 1),
        (running, 1),
        (running, 2),
        (running, 3),
    ]
    assert prune_reminders(db, cutoff) == 0
    with pytest.raises(ConfigError, match="--older-than"):
        prune_cutoff(date(2026, 3, 1), 0, "UTC")


def _expanded_by_the_deliverer(db: Database) -> None:
    """As after a drain with in-app only: the cursor past every reminder, no deliveries."""
    with db.connection() as conn:
        conn.execute(
            "UPDATE delivery_cursor SET last_notification_id = (SELECT max(id) FROM notifications)"
        )


def test_prune_keeps_reminders_with_a_delivery_to_send_or_not_yet_expanded(db):
    mentor = add_mentor(db)
    ended = add_assignment(db, mentor, date(2026, 3, 1))
    for sequence in (1, 2, 3, 4):
        _insert(db, assignment_id=ended, mentor_id=mentor, sequence=sequence)
    old = datetime(2026, 2, 1, tzinfo=UTC)
    with db.connection() as conn:
        conn.execute("UPDATE notifications SET state = 'delivered', created_at = %s", (old,))
        # The deliverer has seen the first three; #1 was sent, #2 waits for a retry,
        # #3 is pending; #4 is past the cursor (not turned into deliveries yet).
        conn.execute(
            "UPDATE delivery_cursor SET last_notification_id ="
            " (SELECT id FROM notifications WHERE sequence = 3)"
        )
        conn.execute(
            "INSERT INTO deliveries (notification_id, channel, state)"
            " SELECT id, 'webhook', (ARRAY['sent', 'retry', 'pending'])[sequence]"
            " FROM notifications WHERE sequence <= 3"
        )
    assert prune_reminders(db, old + timedelta(days=1)) == 1
    left = db_rows(db, "SELECT sequence FROM notifications ORDER BY sequence")
    assert [r["sequence"] for r in left] == [2, 3, 4]
    states = db_rows(db, "SELECT state FROM deliveries ORDER BY id")
    assert [r["state"] for r in states] == ["retry", "pending"]


def test_dispatch_probes_the_natural_key_even_on_a_table_analyzed_empty(db):
    """A new deployment: notifications analyzed while empty. The batch's anti-join must
    still use the index (a sequential scan per due row over the pages the statement
    fills is quadratic): no sequential scan of notifications at all. One reminder of
    the last assignment, written after the analyze, makes every batch probe."""
    seed(db, assignments=3000, due_fraction=1.0, today=AS_OF, default_interval_days=10)
    with db.connection(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE notifications")
        conn.execute(
            "INSERT INTO notifications (assignment_id, mentor_id, kind, due_on,"
            " silence_started_on, sequence) SELECT id, mentor_id, 'follow_up_reminder',"
            " %s, %s, 99 FROM assignments ORDER BY id DESC LIMIT 1",
            (AS_OF, AS_OF),
        )
    stats = "SELECT seq_scan, idx_scan FROM pg_stat_user_tables WHERE relname = 'notifications'"
    [before] = db_rows(db, stats)
    counts = ReminderDispatchService(db, ReminderSettings(batch_size=1000)).dispatch(AS_OF, None)
    assert counts.created > 2000
    deadline = time.monotonic() + 10
    while (after := db_rows(db, stats)[0])["idx_scan"] == before["idx_scan"]:
        assert time.monotonic() < deadline, "statistics never flushed"
        time.sleep(0.2)
    assert after["seq_scan"] == before["seq_scan"]
