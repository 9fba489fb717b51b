"""Who holds a lock key: the one record of a lock holder, read from pg_locks.

Every question about a held key (who holds the run lock, does this session,
does any) goes through advisory_lock_holders here. Below core/ so that
migrations (db/migrate.py) can name the run they wait for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reminders_pipeline.db.connector import Session, connect, record_from_row
from reminders_pipeline.db.lock_keys import LOCK_KEY, LockKey

APPLICATION_PREFIX = "reminders-run:"
# The session of a day's run as one call, reminders_run_day(), while it holds the
# lock: the function sets it for its transaction (migration 0012), followed by the
# caller's own name in brackets when it has another: 'reminders-run-day (pg_cron)'.
ONE_CALL_APPLICATION_NAME = "reminders-run-day"


def application_name_for(run_id: str | None) -> str:
    """application_name of the lock session: names the run that holds the lock."""
    return f"{APPLICATION_PREFIX}{run_id or 'unknown'}"[:63]


def is_one_call_session(name: str | None) -> bool:
    """Whether application_name `name` is a reminders_run_day() call's holding the lock."""
    return name == ONE_CALL_APPLICATION_NAME or (name or "").startswith(
        f"{ONE_CALL_APPLICATION_NAME} ("
    )


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
    # pg_stat_activity.state ('active', 'idle', 'idle in transaction', ...). Like
    # since and state_change, None when this login may not see the holder's session.
    state: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LockHolder:
        """From an advisory_lock_holders row."""
        run_id = run_id_from_application_name(row["application_name"])
        return record_from_row(cls, row, run_id=run_id)

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


def lock_holders(conn: Session, key: LockKey = LOCK_KEY) -> list[dict[str, Any]]:
    """The sessions of this database holding `key` (a shared key may have several)."""
    return conn.all("advisory_lock_holders", **key.params())


def held_by_this_session(conn: Session, key: LockKey = LOCK_KEY) -> bool:
    return any(row["mine"] for row in lock_holders(conn, key))


def find_lock_holder(conn: Session, key: LockKey = LOCK_KEY) -> LockHolder | None:
    rows = lock_holders(conn, key)
    return LockHolder.from_row(rows[0]) if rows else None


def lock_holder(url: str, key: LockKey = LOCK_KEY) -> LockHolder | None:
    """Who holds `key` (the run lock) now, read on a short session of its own."""
    with connect(url, autocommit=True) as conn:
        return find_lock_holder(conn, key)


def lock_state(holder: LockHolder | None) -> dict[str, Any]:
    """The run lock's state as JSON: the CLI's `lock status --json` and the admin API's /lock."""
    return {
        "lock_key": list(LOCK_KEY),
        "held": holder is not None,
        "holder": holder.to_dict() if holder else None,
    }
