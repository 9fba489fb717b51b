"""Small, exact test data: mentors and assignments with chosen dates."""

from __future__ import annotations

from datetime import date

from reminders_pipeline.db.connector import Database


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
