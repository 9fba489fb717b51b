"""A PostgreSQL restart in the middle of a run: a JSON summary, a 'failed' row, no lock.

Runs on a private server (tests/helpers/private_pg.py): the machine's shared
PostgreSQL is never restarted.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import upgrade
from tests.helpers.private_pg import private_postgres
from tests.helpers.runs import (
    lock_holder,
    run_rows,
    seed_assignments,
    today,
    wait_for_run_at_the_gate,
)

pytestmark = pytest.mark.acceptance

ASSIGNMENTS = 20_000
DOWN_FOR_S = 3.0


def test_run_records_failed_once_the_restarted_database_is_back(reminders_cli):
    with private_postgres() as pg:
        url = pg.url
        upgrade(url)
        db = Database(url)
        as_of = today()
        seed_assignments(db, ASSIGNMENTS, 0.3, as_of)
        gate = psycopg.connect(url)
        gate.execute("LOCK TABLE notifications IN SHARE MODE")
        run = reminders_cli.start(
            "run", "--json", "--as-of", as_of.isoformat(), env={"REMINDERS_DATABASE_URL": url}
        )
        wait_for_run_at_the_gate(url, run)

        pg.stop()  # every session ends: the run's lock session and its INSERT with it
        gate.close()
        time.sleep(DOWN_FOR_S)
        assert run.alive(), "the run must wait for the database to record its outcome"
        pg.start()

        finished = run.wait(timeout=120)
        assert finished.returncode == 1, finished.describe()
        summary = finished.json()
        assert summary["status"] == "failed", finished.describe()
        assert "database connection lost" in summary["error"], summary["error"]
        [row] = run_rows(db)
        assert row["status"] == "failed", row
        assert row["error"] == summary["error"]
        assert lock_holder(url) is None

        # The next run finds nothing to mark abandoned, and does the work.
        again = reminders_cli(
            "run", "--json", "--as-of", as_of.isoformat(), env={"REMINDERS_DATABASE_URL": url}
        )
        assert again.returncode == 0, again.describe()
        assert [r["status"] for r in run_rows(db)] == ["failed", "success"]
