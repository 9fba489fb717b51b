"""The due rule lives in SQL (migrations 0004, 0005); its Python twin must agree everywhere."""

from __future__ import annotations

from datetime import date, timedelta

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.queries import query
from tests.helpers.due_rule import next_reminder_due_on, reminder_due_on

AS_OF = date(2026, 3, 1)
SILENT_DAYS = range(-5, 130)  # a contact after as_of, too, as corrections allow
INTERVALS = (1, 2, 3, 7, 10, 14, 30)
CAPS = (1, 2, 3, 5)


def test_python_twin_equals_the_sql_functions_over_a_grid(db: Database) -> None:
    grid = [
        (AS_OF - timedelta(days=silent), interval, cap)
        for silent in SILENT_DAYS
        for interval in INTERVALS
        for cap in CAPS
    ]
    with db.connection() as conn:
        rows = conn.execute(
            """
            SELECT g.last_contact, g.interval_days, g.cap, r.sequence, r.due_on,
                   next_reminder_due_on(g.last_contact, g.interval_days, %(as_of)s, g.cap,
                                        NULL, NULL, NULL)
                       AS next_due_on
            FROM unnest(%(lasts)s::date[], %(intervals)s::int[], %(caps)s::int[])
                 AS g(last_contact, interval_days, cap)
            LEFT JOIN LATERAL reminder_due(g.last_contact, g.interval_days, %(as_of)s, g.cap,
                                           NULL, NULL, NULL)
                 AS r ON true
            """,
            {
                "as_of": AS_OF,
                "lasts": [g[0] for g in grid],
                "intervals": [g[1] for g in grid],
                "caps": [g[2] for g in grid],
            },
        ).fetchall()
    assert len(rows) == len(grid)
    for row in rows:
        args = (row["last_contact"], row["interval_days"], AS_OF, row["cap"])
        sql_due = None if row["sequence"] is None else (row["sequence"], row["due_on"])
        assert sql_due == reminder_due_on(*args), args
        assert row["next_due_on"] == next_reminder_due_on(*args), args


def test_the_queries_call_the_functions_inlined(db: Database) -> None:
    """The planner inlines the SQL functions: no function scan per assignment."""
    with db.connection() as conn:
        plan = conn.execute(
            "EXPLAIN SELECT count(r.sequence) FROM assignments a "
            "LEFT JOIN LATERAL reminder_due(a.last_contact_date, 10, %(as_of)s, 3, "
            "NULL, NULL, NULL) r ON true",
            {"as_of": AS_OF},
        ).fetchall()
    text = "\n".join(row["QUERY PLAN"] for row in plan)
    assert "Function Scan" not in text, text
    # 0005's seven-argument form, as the count and dispatch queries call it.
    with db.connection() as conn:
        plan = conn.execute(
            "EXPLAIN " + query("count_due_assignments"),
            {"as_of": AS_OF, "default_interval": 10, "max_per_silence": 3},
        ).fetchall()
    text = "\n".join(row["QUERY PLAN"] for row in plan)
    assert "Function Scan" not in text and "carried_for" in text, text


def test_python_twin_equals_the_sql_functions_with_carried_reminders(db: Database) -> None:
    """Migration 0005's seven-argument forms: reminders a correction carried."""
    carries = [
        (0, None),
        (1, AS_OF - timedelta(days=3)),
        (2, AS_OF),
        (3, AS_OF - timedelta(days=9)),
    ]
    grid = [
        (AS_OF - timedelta(days=silent), interval, cap, carried, last_sent)
        for silent in range(-2, 70, 3)
        for interval in (1, 3, 7, 10)
        for cap in (1, 3)
        for carried, last_sent in carries
    ]
    # The carried values apply to the silence they were carried into only.
    grid = [(*g, g[0] if i % 3 else g[0] - timedelta(days=1)) for i, g in enumerate(grid)]
    with db.connection() as conn:
        rows = conn.execute(
            """
            SELECT g.last_contact, g.interval_days, g.cap, g.carried, g.last_sent,
                   r.sequence, r.due_on,
                   g.carried_for,
                   next_reminder_due_on(g.last_contact, g.interval_days, %(as_of)s, g.cap,
                                        g.carried_for, g.carried, g.last_sent) AS next_due_on
            FROM unnest(%(lasts)s::date[], %(intervals)s::int[], %(caps)s::int[],
                        %(carried)s::int[], %(sent)s::date[], %(carried_for)s::date[])
                 AS g(last_contact, interval_days, cap, carried, last_sent, carried_for)
            LEFT JOIN LATERAL reminder_due(g.last_contact, g.interval_days, %(as_of)s, g.cap,
                                           g.carried_for, g.carried, g.last_sent) AS r ON true
            """,
            {
                "as_of": AS_OF,
                "lasts": [g[0] for g in grid],
                "intervals": [g[1] for g in grid],
                "caps": [g[2] for g in grid],
                "carried": [g[3] for g in grid],
                "sent": [g[4] for g in grid],
                "carried_for": [g[5] for g in grid],
            },
        ).fetchall()
    assert len(rows) == len(grid)
    for row in rows:
        args = (
            row["last_contact"],
            row["interval_days"],
            AS_OF,
            row["cap"],
            row["carried_for"],
            row["carried"],
            row["last_sent"],
        )
        sql_due = None if row["sequence"] is None else (row["sequence"], row["due_on"])
        assert sql_due == reminder_due_on(*args), args
        assert row["next_due_on"] == next_reminder_due_on(*args), args
