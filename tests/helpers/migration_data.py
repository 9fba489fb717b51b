"""Live data for migration tests: runs and reminders as a run of an older revision wrote them."""

from __future__ import annotations

from datetime import date

import psycopg

# The day the seeded assignments are dated from.
AS_OF = date(2026, 3, 1)


def add_runs_and_reminders(url: str, as_of: date, label: str) -> int:
    """A success run that created the reminders due on as_of (the due rule in SQL, as
    a run would have), and a skipped, a failed and an abandoned run; how many reminders."""
    with psycopg.connect(url) as conn:
        run_id = conn.execute(
            "INSERT INTO reminder_runs (status, as_of, dagster_run_id, started_at, finished_at,"
            " selected, created, already_existed, lock_backend_pid)"
            " VALUES ('success', %s, %s, now() - interval '2 minutes', now() - interval '1 minute',"
            " 0, 0, 0, 4242) RETURNING id",
            (as_of, f"{label}-success"),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO reminder_runs (status, as_of, dagster_run_id, started_at, finished_at,"
            " error, blocked_by_pid, blocked_by_application_name, blocked_by_run_id)"
            " VALUES ('skipped', %(d)s, %(l)s || '-skipped', now(), now(), 'lock held', 4242,"
            "         'reminders-run:' || %(l)s || '-success', %(l)s || '-success'),"
            "        ('failed', %(d)s, %(l)s || '-failed', now(), now(), 'boom', NULL, NULL, NULL),"
            "        ('abandoned', %(d)s, %(l)s || '-abandoned', now(), now(), 'died', NULL,"
            "         NULL, NULL)",
            {"d": as_of, "l": label},
        )
        created = conn.execute(
            """
            INSERT INTO notifications (assignment_id, mentor_id, kind, due_on,
                                       silence_started_on, sequence, run_id)
            SELECT id, mentor_id, 'follow_up_reminder', last_contact_date + n * iv,
                   last_contact_date, n, %(run)s
            FROM (SELECT id, mentor_id, last_contact_date,
                         coalesce(reminder_interval_days, 10) AS iv,
                         least((%(d)s::date - last_contact_date)
                               / coalesce(reminder_interval_days, 10), 3) AS n
                  FROM assignments WHERE status = 'active') a
            WHERE n >= 1
            ON CONFLICT DO NOTHING
            """,
            {"d": as_of, "run": run_id},
        ).rowcount
        conn.execute("UPDATE reminder_runs SET created = %s WHERE id = %s", (created, run_id))
    return created
