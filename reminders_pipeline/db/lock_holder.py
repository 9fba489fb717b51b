"""Who holds the run lock: the one record of a lock holder, read from pg_locks.

Below core/ so that migrations (db/migrate.py) can name the run they wait for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reminders_pipeline.db.connector import Session, connect
from reminders_pipeline.db.lock_keys import LOCK_NAMESPACE, REMINDERS_RUN_JOB
from reminders_pipeline.db.queries import query

APPLICATION_PREFIX = "reminders-run:"


def application_name_for(run_id: str | None) -> str:
    """application_name of the lock session: names the run that holds the lock."""
    return f"{APPLICATION_PREFIX}{run_id or 'unknown'}"[:63]


def run_id_from_application_name(name: str | None) -> str | None:
    if name and name.startswith(APPLICATION_PREFIX):
        run_id = name[len(APPLICATION_PREFIX) :]
        return None if run_id == "unknown" else run_id
    return None


@dataclass(frozen=True)
class LockHolder:
    """Who holds the run lock, as PostgreSQL sees it."""

    pid: int
    application_name: str | None
    since: datetime | None
    client_addr: str | None
    run_id: str | None
    # pg_stat_activity.state_change: the session's last change between active and
    # idle. An idle holder took the lock at or before it, so "held for at least
    # now - state_change" is true; `since` (the session's start) may be long before.
    state_change: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LockHolder:
        return cls(
            pid=row["pid"],
            application_name=row["application_name"],
            since=row["since"],
            client_addr=row["client_addr"],
            run_id=run_id_from_application_name(row["application_name"]),
            state_change=row.get("state_change"),
        )

    @classmethod
    def from_blocked_row(cls, row: dict[str, Any]) -> LockHolder | None:
        """The holder a 'skipped' reminder_runs row recorded (blocked_by_* columns)."""
        if row.get("blocked_by_pid") is None:
            return None
        return cls(
            pid=row["blocked_by_pid"],
            application_name=row["blocked_by_application_name"],
            since=row["blocked_since"],
            client_addr=None,
            run_id=row["blocked_by_run_id"],
        )

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a lock holder: CLI, admin API, op metadata."""
        return {
            "pid": self.pid,
            "application_name": self.application_name,
            "since": self.since.isoformat() if self.since else None,
            "client_addr": self.client_addr,
            "run_id": self.run_id,
        }

    def describe(self) -> str:
        who = f"pid {self.pid}"
        if self.run_id:
            who += f", run {self.run_id}"
        elif self.application_name:
            who += f", {self.application_name!r}"
        if self.since:
            who += f", since {self.since.isoformat(timespec='seconds')}"
        return who


def find_lock_holder(conn: Session) -> LockHolder | None:
    params = {"namespace": LOCK_NAMESPACE, "job": REMINDERS_RUN_JOB}
    row = conn.execute(query("run_lock_holder"), params).fetchone()
    return LockHolder.from_row(row) if row else None


def lock_holder(url: str) -> LockHolder | None:
    """Who holds the run lock now, read on a short session of its own."""
    with connect(url, autocommit=True) as conn:
        return find_lock_holder(conn)
