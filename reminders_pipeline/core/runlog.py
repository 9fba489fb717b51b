"""The execution log: one reminder_runs row per invocation.

Statuses: 'running' while a run holds the lock, then 'success' or 'failed';
'skipped' when another run held the lock; 'abandoned' for a 'running' row whose
process died (marked by the next run that gets the lock). Each write is its own
short transaction on its own connection, so the log survives the loss of the
lock connection and a rollback of dispatch work; except 'success', which goes
through the lock's own session and only while it holds the lock, and the batch
counts, which commit with each batch on that session (see dispatch.py).

Recording 'failed' retries with backoff for a while: the error that failed the
run is often the database going away (a restart), and the outcome should still
land once it is back.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

import backoff

from reminders_pipeline.db.connector import Database, Session, record_from_row
from reminders_pipeline.db.lock_holder import LockHolder, held_by_this_session
from reminders_pipeline.errors import ConnectionLost, DatabaseUnavailable, LockLost, first_line
from reminders_pipeline.settings.liveness import RUN_RECORD_RETRY_S

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 4000


@dataclass(frozen=True)
class RunCounts:
    selected: int = 0
    created: int = 0
    already_existed: int = 0

    def with_due(self, due: int) -> RunCounts:
        """A failed run's counts: `selected` is at least what its selection found due."""
        return replace(self, selected=max(self.selected, due))


@dataclass(frozen=True)
class RunSummary:
    """One invocation's outcome: what ReminderRun returns and what a reminder_runs row says.

    to_dict() is its one JSON shape (the CLI's `run --json`, op metadata).
    """

    status: str
    as_of: date
    dagster_run_id: str | None
    run_row_id: int | None
    selected: int = 0
    created: int = 0
    already_existed: int = 0
    duration_s: float = 0.0
    holder: LockHolder | None = None  # who held the lock, for a 'skipped' run
    error: str | None = None
    # 'session': the batched run; 'transaction': one call of reminders_run_day().
    lock_scope: str = "session"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunSummary:
        """From a reminder_runs row (list_runs, runs_for_dagster_run)."""
        return record_from_row(
            cls,
            row,
            run_row_id=row["id"],
            selected=row["selected"] or 0,
            created=row["created"] or 0,
            already_existed=row["already_existed"] or 0,
            duration_s=round(row["duration_s"] or 0.0, 3),
            holder=LockHolder.from_blocked_row(row) if row["status"] == "skipped" else None,
            lock_scope=row.get("lock_scope") or "session",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "run_id": self.dagster_run_id,
            "as_of": self.as_of.isoformat(),
            "selected": self.selected,
            "created": self.created,
            "already_existed": self.already_existed,
            "duration_s": self.duration_s,
            "reminder_runs_id": self.run_row_id,
            "blocked_by": self.holder.to_dict() if self.holder else None,
            "error": self.error,
            "lock_scope": self.lock_scope,
        }


def unrecorded(error: str, exc: BaseException, run_row_id: int | None) -> str:
    """A failure whose recording failed too: what the summary says instead of the row."""
    if run_row_id is None:
        return f"{error}; no row could be written for it ({first_line(exc)})"
    return (
        f"{error}; its outcome could not be recorded ({first_line(exc)}): row "
        f"{run_row_id} stays 'running' until the next run marks it abandoned"
    )


def warn_skipped(as_of: date, holder: LockHolder | None) -> None:
    """The log line of a run that found the lock held (batched, or one SQL call)."""
    log.warning(
        "skipped the reminders run for %s: another run holds the lock (%s)",
        as_of,
        holder.describe() if holder else "holder unknown: it released meanwhile",
    )


class RunLog:
    def __init__(self, db: Database, record_retry_s: float = RUN_RECORD_RETRY_S.default) -> None:
        self.db = db
        self.record_retry_s = record_retry_s

    def mark_abandoned(self) -> None:
        """Mark every 'running' row abandoned. Call only while holding the run lock."""
        for row in self.db.fetch_all("mark_abandoned_runs"):
            log.warning(
                "marked run %s (Dagster run %s, started %s) abandoned",
                row["id"],
                row["dagster_run_id"],
                row["started_at"],
            )

    def _insert(self, name: str, **params: Any) -> int:
        """Write one new row with the named query; its id."""
        row = self.db.fetch_one(name, **params)
        assert row is not None
        return row["id"]

    def start(
        self, as_of: date, dagster_run_id: str | None, trigger: str, lock_backend_pid: int
    ) -> int:
        return self._insert(
            "insert_running_run",
            as_of=as_of,
            dagster_run_id=dagster_run_id,
            trigger=trigger,
            lock_backend_pid=lock_backend_pid,
        )

    def skipped(
        self, as_of: date, dagster_run_id: str | None, trigger: str, holder: LockHolder | None
    ) -> int:
        """A run that found the run lock held: a 'skipped' row naming the holder."""
        reason = "another run holds the run lock"
        if holder is not None:
            reason += f" ({holder.describe()})"
        return self._skipped_row(as_of, dagster_run_id, trigger, reason, holder=holder)

    def succeeded(self, run_row_id: int, counts: RunCounts, conn: Session) -> None:
        """Record success on `conn`, the lock's own session, only while it holds the lock.

        Call it inside a transaction on that session: the lock seen held by its first
        statement stays held until the commit (only this session could let go of it, or
        its death, which rolls the transaction back).
        """
        row = None
        if held_by_this_session(conn):
            row = conn.one("finish_run_success", id=run_row_id, **asdict(counts))
        if row is None:
            raise LockLost(
                f"reminder_runs row {run_row_id} was not recorded as success: this run's session "
                "no longer holds the run lock, or another run took the lock and marked it abandoned"
            )

    def failed(self, run_row_id: int, error: str, counts: RunCounts) -> None:
        """Record failure; while the database is unreachable, retry with backoff for a while."""

        def on_backoff(details: Any) -> None:
            log.warning(
                "recording run %s as failed: the database is unreachable (%s); retrying in %.1fs",
                run_row_id,
                details.get("exception"),
                details.get("wait", 0.0),
            )

        @backoff.on_exception(
            backoff.expo,
            (DatabaseUnavailable, ConnectionLost),
            max_time=self.record_retry_s,
            max_value=5,
            on_backoff=on_backoff,
            logger=None,
        )
        def record() -> None:
            self.db.fetch_one(
                "finish_run_failed",
                id=run_row_id,
                error=error[:MAX_ERROR_LENGTH],
                **asdict(counts),
            )

        record()

    def failed_before_start(
        self, as_of: date, dagster_run_id: str | None, trigger: str, error: str
    ) -> int:
        """Log an invocation that failed before it had a 'running' row."""
        return self._insert(
            "insert_failed_run",
            as_of=as_of,
            dagster_run_id=dagster_run_id,
            trigger=trigger,
            error=error[:MAX_ERROR_LENGTH],
        )

    def recent(self, limit: int = 20, offset: int = 0, status: str | None = None) -> list[dict]:
        return self.db.fetch_all("list_runs", limit=limit, offset=offset, status=status)

    def for_dagster_run(self, dagster_run_id: str) -> list[dict[str, Any]]:
        return self.db.fetch_all("runs_for_dagster_run", dagster_run_id=dagster_run_id)

    # -- for the Dagster schedule and sensors ------------------------------------

    def tick_skipped(self, as_of: date, reason: str, *, blocking_run_id: str) -> int:
        """A schedule tick that launched no run: a 'skipped' row with the reason as error."""
        return self._skipped_row(as_of, None, "schedule", reason, blocking_run_id=blocking_run_id)

    def _skipped_row(
        self,
        as_of: date,
        dagster_run_id: str | None,
        trigger: str,
        reason: str,
        *,
        holder: LockHolder | None = None,
        blocking_run_id: str | None = None,
    ) -> int:
        return self._insert(
            "insert_skipped_run",
            as_of=as_of,
            dagster_run_id=dagster_run_id,
            trigger=trigger,
            reason=reason[:MAX_ERROR_LENGTH],
            blocked_by_pid=holder.pid if holder else None,
            blocked_by_application_name=holder.application_name if holder else None,
            blocked_by_run_id=blocking_run_id or (holder.run_id if holder else None),
            blocked_since=holder.since if holder else None,
        )

    def running_started_before(self, older_than_s: float) -> list[dict[str, Any]]:
        """'running' rows that started more than older_than_s seconds ago."""
        return self.db.fetch_all("running_runs_started_before", older_than_s=older_than_s)
