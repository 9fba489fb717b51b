"""In-memory stand-ins for a run's lock, run log and services: ReminderRun's logic
without a database (tests/unit/test_run_steps.py, tests/unit/test_liveness.py)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime

from reminders_pipeline.core.due import DueSelection
from reminders_pipeline.core.runlog import RunCounts
from reminders_pipeline.db.lock_holder import LockHolder

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

    @contextmanager
    def transaction(self):
        assert self.held
        yield "lock-session"

    def cancel(self) -> None:
        self.cancelled = True

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

    def succeeded(self, row_id, counts, conn):
        assert conn == "lock-session", "success is recorded through the lock's session"
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

    def dispatch(self, as_of, run_row_id, *, transaction, before_batch, on_progress):
        self.calls += 1
        before_batch()
        with transaction() as session:
            assert session == "lock-session", "dispatch runs on the lock's session"
        if self.error:
            raise self.error
        return RunCounts(selected=2, created=2, already_existed=0)
