"""A day is done in Dagster's terms only when its reminders were created.

Runs go through the CLI's launch path (`execute_job(reconstructable(...))` on a
persistent DAGSTER_HOME), against a real database: a successful run materializes
its day of `reminders/daily_reminders` with the counts, a skipped run (lock held
by another session) and a failed run (database unreachable) do not. The job's
run-based partition status calls the skipped day a success, which is why the
asset is the operator's view of which days are missing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from reminders_pipeline.cli import main
from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.db.connector import Database
from reminders_pipeline.orchestration.dagster_home import dagster_instance
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.launch import run_reminders_job
from reminders_pipeline.orchestration.ops import DAILY_REMINDERS, OUTCOME_TAG
from reminders_pipeline.orchestration.partitions import missing_days
from tests.helpers.data import add_assignment, add_mentor

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def materializations(instance: DagsterInstance) -> dict[str, dict]:
    """Latest materialization per partition: {partition: metadata values}."""
    result = instance.fetch_materializations(DAILY_REMINDERS, limit=100)
    found: dict[str, dict] = {}
    for record in reversed(result.records):  # oldest first, the latest wins
        event = record.asset_materialization
        assert event is not None
        found[event.partition] = {k: v.value for k, v in event.metadata.items()}
    return found


def test_only_a_run_that_created_the_days_reminders_materializes_the_day(
    reminders_env: dict[str, str],
    db: Database,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def cli_main(args: list[str]) -> Any:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(args)
        assert exited.value.code == 0
        return capsys.readouterr()

    mentor = add_mentor(db)
    add_assignment(db, mentor, D1 - timedelta(days=10))  # due on D1, and every day after

    done = run_reminders_job(db_url, D1)
    with RunLock(db_url, "another-run") as lock:  # another run holds the lock: D2 is skipped
        assert lock.try_acquire()
        skipped = run_reminders_job(db_url, D2)
    with monkeypatch.context() as env:  # the database is unreachable: D3 fails
        env.setenv("REMINDERS_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
        failed = run_reminders_job(db_url, D3)
    assert [done.status, skipped.status, failed.status] == [
        "success",
        "skipped",
        "failed",
    ]

    with dagster_instance() as instance:
        assert instance.get_materialized_partitions(DAILY_REMINDERS) == {D1.isoformat()}
        meta = materializations(instance)[D1.isoformat()]
        assert meta["created"] == 1 and meta["selected"] == 1 and meta["already_existed"] == 0
        assert meta["reminder_runs_id"] == done.run_row_id

        outcome = {
            run.tags["dagster/partition"]: (run.status, run.tags.get(OUTCOME_TAG))
            for run in instance.get_runs(RunsFilter(job_name=reminders_job.name))
        }
        # The skipped run is a Dagster success (it recorded the skip and stopped)
        # told apart by its outcome tag; the job's run-based partition status
        # therefore counts D2 as done, and only the asset says it is missing.
        assert outcome == {
            D1.isoformat(): (DagsterRunStatus.SUCCESS, "success"),
            D2.isoformat(): (DagsterRunStatus.SUCCESS, "skipped"),
            D3.isoformat(): (DagsterRunStatus.FAILURE, None),
        }

        assert missing_days(instance, D1, D3) == [D2.isoformat(), D3.isoformat()]
    missing = cli_main(["missing", "--since", D1.isoformat(), "--until", D3.isoformat()])
    assert missing.out == f"{D2.isoformat()},{D3.isoformat()}\n"

    # Backfilling exactly the missing days makes them done, with their own counts.
    for day in (D2, D3):
        assert run_reminders_job(db_url, day).status == "success"
    with dagster_instance() as instance:
        assert instance.get_materialized_partitions(DAILY_REMINDERS) == {
            d.isoformat() for d in (D1, D2, D3)
        }
        meta = materializations(instance)
        # D1's reminder covers the silence up to D2 and D3: nothing new to create.
        assert meta[D2.isoformat()]["created"] == 0
        assert meta[D3.isoformat()]["selected"] == 1
        assert missing_days(instance, D1, D3) == []
