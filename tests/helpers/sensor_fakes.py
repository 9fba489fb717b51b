"""The sensors' world in memory: SensorReads (core/sensor_reads.py) without a database,
alerts recorded instead of sent, and one tick of a sensor through Dagster's own
build_sensor_context and evaluate_tick.

FakeReads answers as the named queries do; tests/integration/test_sensor_reads.py
runs it and RemindersDatabaseResource through the same cases, so it cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import DagsterInstance, SensorDefinition, build_sensor_context

from reminders_pipeline.alerts.messages import Alert, now_utc, run_url
from reminders_pipeline.core.sensor_reads import Row
from reminders_pipeline.db.lock_holder import (
    APPLICATION_PREFIX,
    ONE_CALL_APPLICATION_NAME,
    LockHolder,
    application_name_for,
)

UI = "http://dagster.test"


@dataclass
class FakeReads:
    """SensorReads over lists; bound as `reminders_db`, where the code location binds
    RemindersDatabaseResource. `down` makes every read raise it."""

    runs: list[Row] = field(default_factory=list)
    deliveries: list[Row] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)  # application_name of live sessions
    holder: LockHolder | None = None
    down: Exception | None = None
    next_pid: int = 4200

    # The world, built as the conformance cases build the database.

    def add_run(
        self,
        status: str,
        *,
        minutes_ago: float = 0,
        dagster_run_id: str | None = None,
        trigger: str = "cli",
        error: str | None = None,
        blocked_by_pid: int | None = None,
        blocked_by_run_id: str | None = None,
        lock_backend_pid: int | None = None,
    ) -> int:
        row_id = len(self.runs) + 1
        self.runs.append(
            {
                "id": row_id,
                "status": status,
                "dagster_run_id": dagster_run_id,
                "trigger": trigger,
                "started_at": now_utc() - timedelta(minutes=minutes_ago),
                "error": error,
                "blocked_by_pid": blocked_by_pid,
                "blocked_by_run_id": blocked_by_run_id,
                "lock_backend_pid": lock_backend_pid,
            }
        )
        return row_id

    def add_delivery(
        self,
        state: str,
        *,
        created_minutes_ago: float = 0,
        finished_minutes_ago: float | None = None,
        last_error: str | None = None,
    ) -> int:
        row_id = len(self.deliveries) + 1
        now = now_utc()
        finished = (
            None if finished_minutes_ago is None else now - timedelta(minutes=finished_minutes_ago)
        )
        self.deliveries.append(
            {
                "id": row_id,
                "state": state,
                "created_at": now - timedelta(minutes=created_minutes_ago),
                "finished_at": finished,
                "last_error": last_error,
            }
        )
        return row_id

    def open_session(self, run_id: str | None) -> int:
        """A run's session that does not hold the lock (a run between steps)."""
        self.sessions.add(application_name_for(run_id))
        self.next_pid += 1
        return self.next_pid

    def hold_lock(self, run_id: str | None, *, idle_minutes: float = 0) -> int:
        """The run lock taken by a run's session; its pid. idle_minutes backdates it."""
        pid = self.open_session(run_id)
        since = now_utc() - timedelta(minutes=idle_minutes)
        self.holder = LockHolder(
            pid=pid,
            application_name=application_name_for(run_id),
            since=since,
            client_addr=None,
            run_id=run_id,
            state_change=since,
            state="idle",  # a run's lock session between its statements
        )
        return pid

    def hold_lock_in_one_call(
        self, state: str | None = "idle in transaction", *, idle_minutes: float = 0
    ) -> int:
        """The run lock taken by a day's run as one call (reminders_run_day()), its
        session in `state` (None: a state this login may not see); its pid. By default
        the call has returned and its transaction is left open."""
        self.next_pid += 1
        since = now_utc() - timedelta(minutes=idle_minutes)
        self.holder = LockHolder(
            pid=self.next_pid,
            application_name=ONE_CALL_APPLICATION_NAME,
            since=since,
            client_addr=None,
            run_id=None,
            state_change=since,
            state=state,
        )
        return self.next_pid

    # SensorReads

    def _read(self) -> None:
        if self.down is not None:
            raise self.down

    def lock_holder(self) -> LockHolder | None:
        self._read()
        return self.holder

    def latest_runs(self, limit: int) -> list[Row]:
        self._read()
        newest = sorted(self.runs, key=lambda r: (r["started_at"], r["id"]), reverse=True)
        return [dict(r) for r in newest[:limit]]

    def runs_of(self, dagster_run_id: str) -> list[Row]:
        self._read()
        return [dict(r) for r in reversed(self.runs) if r["dagster_run_id"] == dagster_run_id]

    def running_started_before(self, older_than_s: float) -> list[Row]:
        self._read()
        before = now_utc() - timedelta(seconds=older_than_s)
        return [
            dict(r) for r in self.runs if r["status"] == "running" and r["started_at"] <= before
        ]

    def delivery_health(self, after_finished_at: str | None, after_dead_id: int) -> Row:
        self._read()
        after = (
            datetime.fromisoformat(after_finished_at)
            if after_finished_at
            else datetime.min.replace(tzinfo=UTC),
            after_dead_id,
        )
        # A row comparison with a NULL finished_at is NULL: such a row never counts.
        dead = sorted(
            (d for d in self.deliveries if d["state"] == "dead" and d["finished_at"] is not None),
            key=lambda d: (d["finished_at"], d["id"]),
            reverse=True,
        )
        new = [d for d in dead if (d["finished_at"], d["id"]) > after]
        errors = [d["last_error"] for d in new[:3] if d["last_error"] is not None]
        waiting = [d["created_at"] for d in self.deliveries if d["state"] in ("pending", "retry")]
        return {
            "new_dead": len(new),
            "last_dead_id": dead[0]["id"] if dead else None,
            "last_dead_at": dead[0]["finished_at"] if dead else None,
            "recent_errors": " / ".join(errors) if errors else None,
            "oldest_pending_s": (now_utc() - min(waiting)).total_seconds() if waiting else None,
        }

    def live_run_ids(self) -> set[str]:
        self._read()
        return {name[len(APPLICATION_PREFIX) :] for name in self.sessions}


@dataclass
class SentAlerts:
    """Bound as `alerts`: records what a sensor sends, links as the UI at UI would."""

    sent: list[Alert] = field(default_factory=list)

    def send(self, alert: Alert, logger: Any = None) -> dict[str, bool]:
        self.sent.append(alert)
        return {"log": True}

    def run_url(self, run_id: str) -> str | None:
        return run_url(UI, run_id)

    def kinds(self) -> list[str]:
        return [a.kind for a in self.sent]


def tick(
    sensor: SensorDefinition,
    instance: DagsterInstance,
    reads: FakeReads,
    alerts: SentAlerts,
    cursor: str | None = None,
) -> tuple[str, str | None]:
    """One tick of `sensor` as the daemon runs it: its message (the UI's account) and cursor."""
    with build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"reminders_db": reads, "alerts": alerts},
    ) as context:
        data = sensor.evaluate_tick(context)
    assert not data.run_requests, "an alerting sensor launches nothing"
    return data.skip_message or "", data.cursor
