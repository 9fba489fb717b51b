"""The daily schedule: partition key in the organisation's timezone, and the overlap policy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    build_schedule_context,
    instance_for_test,
)
from dagster._utils.schedules import cron_string_iterator

from reminders_pipeline import settings
from reminders_pipeline.db.connector import Database
from reminders_pipeline.orchestration import schedules
from reminders_pipeline.orchestration.definitions import defs
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from reminders_pipeline.orchestration.schedules import daily_reminders_schedule
from tests.helpers.dagster_runs import job_run
from tests.helpers.data import runs

OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


def schedule_context(
    instance: DagsterInstance, db_url: str, at: datetime
) -> ScheduleEvaluationContext:
    return build_schedule_context(
        instance=instance,
        scheduled_execution_time=at,
        resources={"reminders_db": RemindersDatabaseResource(database_url=db_url)},
        repository_def=defs.get_repository_def(),
    )


def tick(instance: DagsterInstance, db_url: str, at: datetime) -> RunRequest | SkipReason:
    with schedule_context(instance, db_url, at) as context:
        return daily_reminders_schedule(context)


def test_tick_requests_that_days_partition_with_the_partition_as_run_key(
    instance: DagsterInstance, db_url: str
) -> None:
    with schedule_context(instance, db_url, datetime(2026, 6, 2, 6, 0, tzinfo=OSLO)) as context:
        data = daily_reminders_schedule.evaluate_tick(context)
    [request] = data.run_requests
    assert request.partition_key == "2026-06-02"
    assert request.run_key == "2026-06-02"
    assert request.tags["reminders/trigger"] == "schedule"
    assert int(request.tags["dagster/priority"]) > 0


def test_the_schedule_runs_at_six_oslo_time_across_daylight_saving_changes(
    instance: DagsterInstance, db_url: str
) -> None:
    assert daily_reminders_schedule.execution_timezone == "Europe/Oslo"
    # Oslo springs forward on 2026-03-29 and falls back on 2026-10-25.
    for first_day, days in ((date(2026, 3, 27), 4), (date(2026, 10, 23), 4)):
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=OSLO).timestamp()
        ticks = cron_string_iterator(start, daily_reminders_schedule.cron_schedule, "Europe/Oslo")
        seen = []
        for _ in range(days):
            at = next(ticks)
            local = at.astimezone(OSLO)
            assert (local.hour, local.minute) == (6, 0)
            result = tick(instance, db_url, at)
            assert isinstance(result, RunRequest)
            seen.append((result.partition_key, at.astimezone(ZoneInfo("UTC")).hour))
        utc_hours = {hour for _, hour in seen}
        assert utc_hours == {4, 5}, "06:00 local is 05:00 UTC in winter and 04:00 in summer"
        assert [key for key, _ in seen] == [
            date.fromordinal(first_day.toordinal() + i).isoformat() for i in range(days)
        ]


def test_partition_is_the_local_date_not_the_utc_date(instance: DagsterInstance) -> None:
    # 00:30 in Oslo on 2026-10-25 is still 2026-10-24 in UTC.
    at = datetime(2026, 10, 25, 0, 30, tzinfo=OSLO)
    assert at.astimezone(ZoneInfo("UTC")).date() == date(2026, 10, 24)
    assert schedules.partition_date_for_tick(at, "Europe/Oslo") == date(2026, 10, 25)


@pytest.mark.parametrize("status", [DagsterRunStatus.STARTED, DagsterRunStatus.QUEUED])
def test_tick_is_skipped_while_a_run_is_queued_or_in_progress(
    instance: DagsterInstance, db_url: str, db: Database, status: DagsterRunStatus
) -> None:
    blocking = job_run(instance, status)

    result = tick(instance, db_url, datetime(2026, 3, 30, 6, 0, tzinfo=OSLO))

    assert isinstance(result, SkipReason)
    message = result.skip_message or ""
    assert blocking in message
    assert status.value in message
    assert "overlap policy 'skip'" in message
    [row] = runs(db)
    assert row["status"] == "skipped"
    assert row["as_of"] == date(2026, 3, 30)
    assert row["trigger"] == "schedule"
    assert row["dagster_run_id"] is None
    assert row["blocked_by_run_id"] == blocking
    assert row["error"] in message  # the log row tells the same story as the tick history
    assert f"[reminder_runs {row['id']}]" in message


def test_finished_runs_do_not_block_the_tick(instance: DagsterInstance, db_url: str) -> None:
    for status in (
        DagsterRunStatus.SUCCESS,
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.NOT_STARTED,
    ):
        job_run(instance, status)
    assert isinstance(tick(instance, db_url, datetime(2026, 3, 30, 6, tzinfo=OSLO)), RunRequest)


def test_a_backfill_in_progress_does_not_swallow_the_tick(
    instance: DagsterInstance, db_url: str, db: Database
) -> None:
    job_run(instance, DagsterRunStatus.STARTED, **{"dagster/backfill": "bf1"})
    job_run(instance, DagsterRunStatus.QUEUED, **{"dagster/backfill": "bf1"})

    result = tick(instance, db_url, datetime(2026, 3, 30, 6, tzinfo=OSLO))

    assert isinstance(result, RunRequest)
    assert result.partition_key == "2026-03-30"
    assert int(result.tags["dagster/priority"]) > 0  # dequeued before the backfill's rest
    assert runs(db) == []


def test_queue_policy_launches_behind_the_running_run(
    instance: DagsterInstance, db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMINDERS_OVERLAP_POLICY", "queue")
    job_run(instance, DagsterRunStatus.STARTED)

    result = tick(instance, db_url, datetime(2026, 3, 30, 6, tzinfo=OSLO))

    assert isinstance(result, RunRequest)
    assert result.partition_key == "2026-03-30"
    assert runs(db) == []


def test_skip_reason_reaches_the_ui_even_when_the_log_cannot_be_written(
    instance: DagsterInstance,
) -> None:
    blocking = job_run(instance, DagsterRunStatus.STARTED)
    result = tick(
        instance, "postgresql://nobody@127.0.0.1:1/none", datetime(2026, 3, 30, 6, tzinfo=OSLO)
    )
    assert isinstance(result, SkipReason)
    assert blocking in (result.skip_message or "")
    assert "not written to reminder_runs" in (result.skip_message or "")


def test_overlap_policy_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_OVERLAP_POLICY", "Queue")
    assert settings.OVERLAP_POLICY.get() == "queue"
    monkeypatch.setenv("REMINDERS_OVERLAP_POLICY", "cancel")
    with pytest.raises(Exception, match="REMINDERS_OVERLAP_POLICY"):
        settings.OVERLAP_POLICY.get()
