"""The run lock: one session-level PostgreSQL advisory lock for the whole run.

The lock lives on a dedicated autocommit connection opened for the run and
closed with it. A normal end or an error releases it explicitly; a killed
process closes its socket and PostgreSQL drops the lock with the session, so a
crash never leaves it behind. See docs/decisions/lock-scope.md for why this is
a session lock and not a transaction lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reminders_pipeline.db.connector import Session, connect
from reminders_pipeline.db.lock_keys import LOCK_KEY, LOCK_NAMESPACE, REMINDERS_RUN_JOB
from reminders_pipeline.db.queries import query
from reminders_pipeline.errors import DatabaseError, LockLost

log = logging.getLogger(__name__)

# LOCK_KEY (namespace "REMI", job 1) is defined and documented in db/lock_keys.py,
# beside the migration lock's key, so the db layer needs nothing from here.

APPLICATION_PREFIX = "reminders-run:"

# TCP keepalives bound how long a vanished host (power loss, network split) keeps
# the lock. The client side (libpq) notices a dead server; only the server side
# makes PostgreSQL drop the session of a client host that went away, after about
# idle + interval * count seconds instead of the kernel's two hours. The server
# settings are SET after connecting rather than passed as startup options, which
# some poolers refuse; on a Unix socket PostgreSQL ignores them.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
SERVER_KEEPALIVES = {
    "tcp_keepalives_idle": 30,
    "tcp_keepalives_interval": 10,
    "tcp_keepalives_count": 3,
}


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

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LockHolder:
        return cls(
            pid=row["pid"],
            application_name=row["application_name"],
            since=row["since"],
            client_addr=row["client_addr"],
            run_id=run_id_from_application_name(row["application_name"]),
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


def _params() -> dict[str, int]:
    return {"namespace": LOCK_NAMESPACE, "job": REMINDERS_RUN_JOB}


def find_lock_holder(conn: Session) -> LockHolder | None:
    row = conn.execute(query("run_lock_holder"), _params()).fetchone()
    return LockHolder.from_row(row) if row else None


def lock_holder(url: str) -> LockHolder | None:
    """Who holds the run lock now, read on a short session of its own."""
    with connect(url, autocommit=True) as conn:
        return find_lock_holder(conn)


def lock_state(holder: LockHolder | None) -> dict[str, Any]:
    """The run lock's state as JSON: the CLI's `lock status --json` and the admin API's /lock."""
    return {
        "lock_key": list(LOCK_KEY),
        "held": holder is not None,
        "holder": holder.to_dict() if holder else None,
    }


class RunLock:
    """The advisory lock of one run, on its own connection.

    Use as a context manager: the connection (and with it the lock) is gone
    when the block ends, whatever happens inside.
    """

    def __init__(self, url: str, run_id: str | None) -> None:
        self.url = url
        self.run_id = run_id
        self._conn: Session | None = None
        self.acquired = False

    def __enter__(self) -> RunLock:
        self._conn = connect(
            self.url,
            autocommit=True,
            application_name=application_name_for(self.run_id),
            **KEEPALIVES,
        )
        try:
            for name, value in SERVER_KEEPALIVES.items():
                self._conn.execute(f"SET {name} = {int(value)}")
        except BaseException:
            # A session left open here would carry this run's name, and look alive.
            self._conn.close()
            self._conn = None
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def conn(self) -> Session:
        if self._conn is None:
            raise RuntimeError("RunLock used outside its `with` block")
        return self._conn

    @property
    def backend_pid(self) -> int:
        return self.conn.backend_pid

    def try_acquire(self) -> bool:
        row = self.conn.execute(query("try_run_lock"), _params()).fetchone()
        self.acquired = bool(row and row["acquired"])
        return self.acquired

    def holder(self) -> LockHolder | None:
        return find_lock_holder(self.conn)

    def ensure_held(self) -> None:
        """Raise LockLost unless this session still holds the lock."""
        try:
            row = self.conn.execute(query("run_lock_held_by_me"), _params()).fetchone()
        except DatabaseError as exc:
            raise LockLost(
                f"the run lock connection is gone: {exc.__cause__ or exc}".strip()
            ) from exc
        if not (row and row["held"]):
            raise LockLost("the run lock is no longer held by this run's session")

    def release(self) -> bool:
        """Release the lock if we took it; an unlock that finds nothing is logged as an error."""
        if not self.acquired:
            return False
        self.acquired = False
        try:
            row = self.conn.execute(query("release_run_lock"), _params()).fetchone()
        except DatabaseError as exc:
            # The session is gone, and the lock with it.
            log.warning("could not release the run lock (connection lost: %s)", exc)
            return False
        released = bool(row and row["released"])
        if not released:
            log.error(
                "pg_advisory_unlock(%s, %s) returned false: the run lock was not held by "
                "this session (lost connection, or a transaction-mode pooler in between?)",
                *LOCK_KEY,
            )
        return released

    def close(self) -> None:
        if self._conn is None:
            return
        try:
            self.release()
        finally:
            self._conn.close()
            self._conn = None
