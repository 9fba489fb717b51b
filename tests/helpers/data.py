"""Small, exact test data: mentors and assignments with chosen dates."""

from __future__ import annotations

from datetime import date, timedelta

from reminders_pipeline.db.connector import Database

# Three consecutive days (a backfill, a queue) and, from seed_three_days, assignments
# whose reminders differ from day to day.
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def add_mentor(db: Database, name: str = "Mentor") -> int:
    with db.connection() as conn:
        row = conn.execute(
            "INSERT INTO mentors (name) VALUES (%s) RETURNING id", (name,)
        ).fetchone()
    return row["id"]


def add_assignment(
    db: Database,
    mentor_id: int,
    last_contact: date,
    *,
    status: str = "active",
    interval_days: int | None = None,
    started_on: date | None = None,
) -> int:
    with db.connection() as conn:
        row = conn.execute(
            """
            INSERT INTO assignments (mentor_id, mentee_name, status, started_on,
                                     last_contact_date, reminder_interval_days)
            VALUES (%s, 'Person', %s, %s, %s, %s) RETURNING id
            """,
            (mentor_id, status, started_on or last_contact, last_contact, interval_days),
        ).fetchone()
    return row["id"]


def seed_three_days(db: Database) -> set[tuple[int, str, date, int]]:
    """Assignments for the three days; returns the reminders those days must create."""
    mentor = add_mentor(db)
    a = add_assignment(db, mentor, D1 - timedelta(days=10))  # due D1 (#1)
    b = add_assignment(db, mentor, D2 - timedelta(days=10))  # due D2 (#1)
    c = add_assignment(db, mentor, D1 - timedelta(days=1), interval_days=1)  # #1..#3 D1..D3
    add_assignment(db, mentor, D3)  # contact on D3: never due
    add_assignment(db, mentor, D1 - timedelta(days=30), status="paused")
    kind = "follow_up_reminder"
    return {
        (a, kind, D1, 1),
        (b, kind, D2, 1),
        (c, kind, D1, 1),
        (c, kind, D2, 2),
        (c, kind, D3, 3),
    }


def notifications(db: Database) -> list[tuple[int, str, date, int]]:
    """(assignment_id, kind, due_on, sequence) of every notification, sorted."""
    rows = db_rows(
        db,
        "SELECT assignment_id, kind, due_on, sequence FROM notifications "
        "ORDER BY assignment_id, due_on",
    )
    return [(r["assignment_id"], r["kind"], r["due_on"], r["sequence"]) for r in rows]


def runs(db: Database) -> list[dict]:
    return db_rows(db, "SELECT * FROM reminder_runs ORDER BY id")


def db_rows(db: Database, sql: str, params: tuple = ()) -> list[dict]:
    with db.connection() as conn:
        return conn.execute(sql, params).fetchall()
