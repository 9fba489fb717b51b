"""After an outage longer than the run's retries, its summary still tells the truth.

Runs on a private server (tests/helpers/private_pg.py). The run commits batches,
then waits on a reminder another session holds; the server stops and stays down
until the run has given up recording its outcome (REMINDERS_RUN_RECORD_RETRY_S)
and exited. Its summary must carry its row's id and the reminders its committed
batches created, not 0 and null; the row itself, once the server is back, says
the same counts, and the next run marks it abandoned and creates exactly the rest.
"""

from __future__ import annotations

import time

import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import upgrade
from tests.helpers.private_pg import private_postgres
from tests.helpers.runs import (
    assert_notifications_are_exactly,
    expected_due_set,
    hold_one_reminder,
    notification_keys,
    run_rows,
    seed_assignments,
    today,
    wait_for_run_at_the_gate,
)

pytestmark = pytest.mark.acceptance

ASSIGNMENTS = 20_000
RECORD_RETRY_S = 3
# The retries, then Dagster's end of run: the run gives up well before the server is back.
EXIT_WITHIN_S = RECORD_RETRY_S + 30


def test_summary_after_a_long_outage_reports_what_was_committed(reminders_cli):
    with private_postgres() as pg:
        url = pg.url
        upgrade(url)
        db = Database(url)
        as_of = today()
        seed_assignments(db, ASSIGNMENTS, 0.3, as_of)
        expected = expected_due_set(db, as_of)
        blocker = hold_one_reminder(url, expected)
        run = reminders_cli.start(
            "run",
            "--json",
            "--as-of",
            as_of.isoformat(),
            env={
                "REMINDERS_DATABASE_URL": url,
                "REMINDERS_BATCH_SIZE": "1000",
                "REMINDERS_RUN_RECORD_RETRY_S": str(RECORD_RETRY_S),
            },
        )
        wait_for_run_at_the_gate(url, run)
        committed = len(notification_keys(db))
        [running] = run_rows(db)
        assert 0 < committed < len(expected), committed

        pg.stop()  # and it stays down until the run has given up and exited
        stopped = time.monotonic()
        blocker.close()
        finished = run.wait(timeout=EXIT_WITHIN_S + 30)
        exited_after = time.monotonic() - stopped
        pg.start()

        assert finished.returncode == 1, finished.describe()
        assert exited_after < EXIT_WITHIN_S, finished.describe()
        summary = finished.json()
        assert summary["status"] == "failed", finished.describe()
        assert summary["reminder_runs_id"] == running["id"], summary
        assert summary["created"] == committed, summary
        assert "could not be recorded" in summary["error"], summary["error"]
        assert f"row {running['id']} stays 'running'" in summary["error"]
        [row] = run_rows(db)
        assert (row["status"], row["created"]) == ("running", committed)

        again = reminders_cli(
            "run", "--json", "--as-of", as_of.isoformat(), env={"REMINDERS_DATABASE_URL": url}
        )
        assert again.returncode == 0, again.describe()
        assert again.json()["created"] == len(expected) - committed
        assert [r["status"] for r in run_rows(db)] == ["abandoned", "success"]
        assert_notifications_are_exactly(db, expected)
