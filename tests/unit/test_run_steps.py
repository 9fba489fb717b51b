"""ReminderRun's guarantees with fakes: logic only (the real lock is tested on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reminders_pipeline.core.due import DueSelection
from reminders_pipeline.core.lock import LockHolder
from reminders_pipeline.core.run import ReminderRun
from reminders_pipeline.core.runlog import RunCounts

AS_OF = date(2026, 11, 29)
HOLDER = LockHolder(
    pid=4242,
    application_name="reminders-run:other-run",
    since=datetime(2026, 11, 29, 6, 0, tzinfo=UTC),
    client_addr=None,
    run_id="other-run",
)


class FakeLock:
    backend_pid = 1001

    def __init__(self, free: bool) -> None:
        self.free = free
        self.held = False
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def try_acquire(self) -> bool:
        self.held = self.free
        return self.free

    def holder(self):
        return None if self.free else HOLDER

    def ensure_held(self) -> None:
        assert self.held

    def close(self) -> None:
        self.held = False
        self.closed = True


class FakeRunLog:
    def __init__(self) -> None:
        self.rows: dict[int, dict] = {}

    def _add(self, **row) -> int:
        row_id = len(self.rows) + 1
        self.rows[row_id] = row
        return row_id

    def mark_abandoned(self):
        return []

    def start(self, as_of, dagster_run_id, trigger, lock_backend_pid):
        return self._add(status="running", as_of=as_of)

    def skipped(self, as_of, dagster_run_id, trigger, holder):
        return self._add(status="skipped", as_of=as_of, holder=holder)

    def succeeded(self, row_id, counts):
        self.rows[row_id].update(status="success", counts=counts)

    def failed(self, row_id, error, counts=None):
        self.rows[row_id].update(status="failed", error=error)


class RecordingScheduler:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    def select_due(self, as_of):
        self.calls += 1
        if self.error:
            raise self.error
        return DueSelection(as_of=as_of, due=2, active=5)


class RecordingDispatcher:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    def dispatch(self, as_of, run_row_id, *, before_batch, on_progress):
        self.calls += 1
        before_batch()
        if self.error:
            raise self.error
        return RunCounts(selected=2, created=2, already_existed=0)


def make_run(lock, scheduler=None, dispatcher=None):
    log = FakeRunLog()
    run = ReminderRun(
        lock=lock,
        runlog=log,
        scheduler=scheduler or RecordingScheduler(),
        dispatcher=dispatcher or RecordingDispatcher(),
        dagster_run_id="this-run",
    )
    return run, log


def test_busy_lock_writes_skipped_and_never_calls_the_services():
    scheduler, dispatcher = RecordingScheduler(), RecordingDispatcher()
    run, log = make_run(FakeLock(free=False), scheduler, dispatcher)

    summary = run.execute(AS_OF)

    assert summary.status == "skipped"
    assert summary.holder == HOLDER
    assert scheduler.calls == 0 and dispatcher.calls == 0
    assert [r["status"] for r in log.rows.values()] == ["skipped"]
    assert log.rows[1]["holder"] == HOLDER


def test_free_lock_runs_every_step_and_releases():
    lock = FakeLock(free=True)
    run, log = make_run(lock)

    summary = run.execute(AS_OF)

    assert summary.status == "success"
    assert (summary.selected, summary.created) == (2, 2)
    assert log.rows[1]["status"] == "success"
    assert lock.closed and not lock.held


@pytest.mark.parametrize("failing", ["scheduler", "dispatcher"])
def test_service_error_records_failed_and_releases_the_lock(failing):
    lock = FakeLock(free=True)
    error = RuntimeError("boom")
    run, log = make_run(
        lock,
        scheduler=RecordingScheduler(error if failing == "scheduler" else None),
        dispatcher=RecordingDispatcher(error if failing == "dispatcher" else None),
    )

    with pytest.raises(RuntimeError, match="boom"):
        run.execute(AS_OF)

    assert log.rows[1]["status"] == "failed"
    assert "RuntimeError: boom" in log.rows[1]["error"]
    assert lock.closed and not lock.held


def test_close_fails_a_run_whose_later_steps_never_ran():
    """Dagster skips ops after a failed one; the resource's close() still ends the run."""
    lock = FakeLock(free=True)
    run, log = make_run(lock)
    run.start(AS_OF)
    run.select()

    run.close()

    assert log.rows[1]["status"] == "failed"
    assert "ended before it finished" in log.rows[1]["error"]
    assert lock.closed
