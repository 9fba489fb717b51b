"""What a run needs of its lock and its watch (real ones in production, fakes in unit tests)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from reminders_pipeline.db.lock_holder import LockHolder


class Lock(Protocol):
    """RunLock in production (core/lock.py)."""

    backend_pid: int

    def __enter__(self) -> Lock: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def try_acquire(self) -> bool: ...
    def holder(self) -> LockHolder | None: ...
    def ensure_held(self) -> None: ...
    # A transaction on the lock's own session (the session it yields).
    def transaction(self) -> AbstractContextManager[Any]: ...
    # Cancel the statement in flight, if any; from a signal handler or another thread.
    def cancel(self) -> None: ...
    def close(self) -> None: ...


class Watch(Protocol):
    """RunSessions in production (db/run_sessions.py): watches the server while the run
    lasts and closes the run's sessions once it has been silent too long."""

    # Why it closed them, once it has; None until then.
    tripped: str | None

    def start(self) -> None: ...
    def stop(self) -> None: ...
    # After a stop signal: close the sessions still busy `seconds` from now.
    def give_up_after(self, seconds: float, reason: str) -> None: ...
