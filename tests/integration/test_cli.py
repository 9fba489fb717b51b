"""The `reminders` command's contract, as scripts and operators rely on it (real processes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from reminders_pipeline.db.lock_keys import LOCK_KEY
from tests.helpers.runs import (
    Finished,
    expected_due_set,
    lock_holder,
    run_rows,
    seed_assignments,
    today,
)

pytestmark = pytest.mark.acceptance

RUN_JSON_TYPES = {
    "status": str,
    "run_id": str,
    "selected": int,
    "created": int,
    "already_existed": int,
    "duration_s": float,
}


@pytest.fixture
def seeded(db) -> tuple[date, int]:
    """A few hundred assignments, some due today; returns (as_of, number due)."""
    as_of = today()
    seed_assignments(db, 300, 0.4, as_of)
    return as_of, len(expected_due_set(db, as_of))


@pytest.fixture
def foreign_lock_holder(db_url: str) -> Iterator[psycopg.Connection]:
    """Another session holding the run lock, named as a run named 'some-id' would be."""
    conn = psycopg.connect(db_url, autocommit=True, application_name="reminders-run:some-id")
    try:
        assert conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()[0]
        yield conn
    finally:
        conn.close()


def run_json(result: Finished) -> dict:
    """stdout is exactly one JSON object (and a newline), with the documented types."""
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1, result.describe()
    data = result.json()
    assert isinstance(data, dict), data
    for key, kind in RUN_JSON_TYPES.items():
        assert key in data, f"{key!r} missing from {data}"
        assert type(data[key]) is kind, f"{key}={data[key]!r} is not {kind.__name__}"
    return data


def test_run_json_reports_success_with_documented_types_and_exit_zero(reminders_cli, seeded, db):
    as_of, due = seeded
    result = reminders_cli("run", "--json", "--as-of", as_of.isoformat())

    assert result.returncode == 0, result.describe()
    data = run_json(result)
    assert data["status"] == "success"
    assert (data["selected"], data["created"], data["already_existed"]) == (due, due, 0)
    assert data["duration_s"] > 0
    [row] = run_rows(db)
    assert row["dagster_run_id"] == data["run_id"] and row["status"] == "success"


def test_run_json_reports_skipped_with_holder_and_exit_zero(
    reminders_cli, seeded, foreign_lock_holder, db
):
    as_of, _ = seeded
    result = reminders_cli("run", "--json", "--as-of", as_of.isoformat())

    assert result.returncode == 0, result.describe()
    data = run_json(result)
    assert data["status"] == "skipped"
    assert (data["selected"], data["created"], data["already_existed"]) == (0, 0, 0)
    assert data["blocked_by"]["pid"] == foreign_lock_holder.info.backend_pid
    assert data["blocked_by"]["application_name"] == "reminders-run:some-id"
    assert data["blocked_by"]["run_id"] == "some-id"
    [row] = run_rows(db)
    assert row["status"] == "skipped" and row["blocked_by_run_id"] == "some-id"


def test_run_json_reports_failed_and_exits_non_zero(reminders_cli, seeded, db, db_url):
    as_of, _ = seeded
    with psycopg.connect(db_url, autocommit=True) as conn:
        # Every reminder insert now fails, as a broken outbox table would.
        conn.execute(
            "ALTER TABLE notifications ADD CONSTRAINT refuse_everything CHECK (false) NOT VALID"
        )
    result = reminders_cli("run", "--json", "--as-of", as_of.isoformat())

    assert result.returncode != 0, result.describe()
    data = run_json(result)
    assert data["status"] == "failed"
    assert "refuse_everything" in data["error"]
    [row] = run_rows(db)
    assert row["status"] == "failed" and "refuse_everything" in row["error"]
    assert lock_holder(db_url) is None, "a failed run must release the lock"


def test_runs_json_lists_the_log_newest_first(reminders_cli, db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        for offset, status in [(3, "success"), (1, "failed"), (2, "skipped")]:
            conn.execute(
                "INSERT INTO reminder_runs (status, as_of, dagster_run_id, started_at, "
                "finished_at) VALUES (%s, current_date, %s, now() - %s * interval '1 hour', "
                "now() - %s * interval '1 hour' + interval '1 second')",
                (status, f"run-{offset}h-ago", offset, offset),
            )

    result = reminders_cli("runs", "--json")
    assert result.returncode == 0, result.describe()
    rows = json.loads(result.stdout)
    assert [r["dagster_run_id"] for r in rows] == ["run-1h-ago", "run-2h-ago", "run-3h-ago"]
    assert [r["status"] for r in rows] == ["failed", "skipped", "success"]

    limited = reminders_cli("runs", "--json", "--limit", "1")
    assert [r["dagster_run_id"] for r in json.loads(limited.stdout)] == ["run-1h-ago"]


def test_lock_status_json_shows_free_then_the_holder(reminders_cli, db_url):
    free = reminders_cli("lock", "status", "--json")
    assert free.returncode == 0, free.describe()
    assert free.json() == {"lock_key": list(LOCK_KEY), "held": False, "holder": None}

    with psycopg.connect(
        db_url, autocommit=True, application_name="reminders-run:some-id"
    ) as holder:
        assert holder.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()[0]
        held = reminders_cli("lock", "status", "--json")
        assert held.returncode == 0, held.describe()
        data = held.json()
        assert data["held"] is True
        assert data["holder"]["pid"] == holder.info.backend_pid
        assert data["holder"]["application_name"] == "reminders-run:some-id"
        assert data["holder"]["run_id"] == "some-id"

    again = reminders_cli("lock", "status", "--json")
    assert again.json()["held"] is False


def test_prune_deletes_old_reminders_and_refuses_a_zero_age(reminders_cli, seeded, db):
    as_of, due = seeded
    assert reminders_cli("run", "--json", "--as-of", as_of.isoformat()).returncode == 0
    # The deliverer has seen them (in-app only: no deliveries, its cursor moves on).
    assert reminders_cli("deliver", "--json").returncode == 0
    with psycopg.connect(db.url) as conn:
        # Every silence reminded today is over (a contact since), and the reminders old.
        conn.execute("UPDATE notifications SET created_at = now() - interval '40 days'")
        conn.execute(
            "UPDATE assignments SET last_contact_date = %s"
            " WHERE id IN (SELECT assignment_id FROM notifications)",
            (as_of,),
        )
    result = reminders_cli("prune", "--older-than", "30", "--json")
    assert result.returncode == 0, result.describe()
    assert result.json()["deleted"] == due > 0
    refused = reminders_cli("prune", "--older-than", "0")
    assert refused.returncode == 1 and "--older-than must be at least 1 day" in refused.stderr
