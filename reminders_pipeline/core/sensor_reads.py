"""What the alerting sensors read from the reminders database: the port they are checked through.

orchestration/resources.RemindersDatabaseResource answers it with the named queries
of db/queries.sql; tests/helpers/sensor_fakes.py answers it in memory for the unit
tests, and tests/integration/test_sensor_reads.py holds the two to the same answers.
Rows are the named queries' dict rows; each method names the columns sensors use.
"""

from __future__ import annotations

from typing import Any, Protocol

from reminders_pipeline.db.lock_holder import LockHolder

Row = dict[str, Any]


class SensorReads(Protocol):
    def lock_holder(self) -> LockHolder | None:
        """Who holds the run lock now; None when nobody does."""
        ...

    def latest_runs(self, limit: int) -> list[Row]:
        """The newest reminder_runs rows, newest first (list_runs): id, status,
        started_at, error, blocked_by_pid, blocked_by_run_id."""
        ...

    def runs_of(self, dagster_run_id: str) -> list[Row]:
        """The reminder_runs rows of one Dagster run, newest first: id, status."""
        ...

    def running_started_before(self, older_than_s: float) -> list[Row]:
        """'running' rows started at least older_than_s ago, by id: id, dagster_run_id,
        trigger, started_at, lock_backend_pid."""
        ...

    def delivery_health(self, after_finished_at: str | None, after_dead_id: int) -> Row:
        """Deliveries dead after (finished_at, id): new_dead, last_dead_id, last_dead_at
        (the latest dead of all), recent_errors; and oldest_pending_s (None: none waits)."""
        ...

    def live_run_ids(self) -> set[str]:
        """Run ids of every `reminders-run:<id>` session on the server: the runs' heartbeat."""
        ...
