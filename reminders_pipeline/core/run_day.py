"""The day's run as one SQL call: reminders_run_day() under the transaction-level lock.

For connections through a pooler that does not keep one server connection per
client (PgBouncer in transaction mode, Supabase's pooler port 6543): the batched
run's session lock cannot live there, but a transaction is one server
connection in every pooler mode. reminders_run_day() (migration 0011) takes the
same key with pg_try_advisory_xact_lock, so it and the batched run exclude each
other, and logs the same reminder_runs rows with lock_scope 'transaction'.

All or nothing: the call's reminders, its run row and its lock end together at
commit or rollback. A call that fails leaves nothing, so the failure is logged
afterwards on a transaction of its own (docs/decisions/lock-scope.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import date

from reminders_pipeline.core.runlog import MAX_ERROR_LENGTH, RunSummary, warn_skipped
from reminders_pipeline.core.stop_signals import handling_stop_signals
from reminders_pipeline.db.connector import connect
from reminders_pipeline.db.lock_holder import ONE_CALL_APPLICATION_NAME
from reminders_pipeline.db.pooler import PROBE_APPLICATION_NAME, require_session_binding
from reminders_pipeline.db.run_sessions import RunSessions
from reminders_pipeline.errors import ConfigError, DatabaseError, UnsupportedPooler
from reminders_pipeline.settings import PARTITIONS_START, ReminderSettings
from reminders_pipeline.settings.lock_scope import LOCK_SCOPE

log = logging.getLogger(__name__)

# Names the caller's session in pg_stat_activity, and in the row of a run it skips;
# the function gives any caller's session this name while it holds the lock.
APPLICATION_NAME = ONE_CALL_APPLICATION_NAME


def choose_lock_scope(url: str) -> str:
    """REMINDERS_LOCK_SCOPE, with `auto` resolved against the connection.

    'session' when `url` keeps one server connection per client (direct, or a session
    pooler); 'transaction' when the pooler check (db/pooler.py) refuses it for any
    reason: a transaction-level lock is correct on every kind of connection.
    """
    scope = LOCK_SCOPE.get()
    if scope != "auto":
        return scope
    with connect(url, autocommit=True, application_name=PROBE_APPLICATION_NAME) as session:
        try:
            require_session_binding(session, url)
        except UnsupportedPooler as exc:
            log.info("the run uses the transaction-level lock: %s", exc)
            return "transaction"
    return "session"


def check_day(day: date, settings: ReminderSettings) -> None:
    """The job's daily partitions' bounds, without Dagster (a day the job could run)."""
    first, today = date.fromisoformat(PARTITIONS_START.get()), settings.today()
    if not first <= day <= today:
        raise ConfigError(
            f"no daily partition for {day.isoformat()}: as-of dates run from "
            f"{first.isoformat()} to {today.isoformat()} (today in {settings.timezone})"
        )


def run_day(url: str, settings: ReminderSettings, as_of: date, trigger: str = "cli") -> RunSummary:
    """One call of reminders_run_day(as_of), in one transaction, with these settings."""
    started = time.perf_counter()
    # Bounded like the batched run's sessions (db/run_sessions.py), but transaction-
    # local: behind a transaction pooler a session setting would outlive the call
    # on a server connection other clients share.
    sessions = RunSessions(url)
    stopped: list[str] = []

    def stop(reason: str) -> None:  # SIGTERM/SIGINT: cancel the call on the server
        stopped.append(reason)
        session.cancel_in_flight()

    sessions.start()
    try:
        # One transaction (commit on a clean exit); prepared statements off, as
        # a transaction-mode pooler may give the next transaction another server.
        session = sessions.open(application_name=APPLICATION_NAME, prepare_threshold=None)
        with session, handling_stop_signals(stop):
            sessions.bounds.apply(session, local=True)
            session.one(
                "run_day_settings",
                timezone=settings.timezone,
                default_interval=str(settings.default_interval_days),
                max_per_silence=str(settings.max_reminders_per_silence),
                trigger=trigger,
            )
            result = session.one("run_day", as_of=as_of)
            assert result is not None
            row = session.one("run_by_id", id=result["run_id"])
            assert row is not None
    except DatabaseError as exc:
        error = f"{type(exc).__name__}: {exc}".strip()
        if stopped:  # the error is the cancel: name its cause
            error = stopped[0]
        elif sessions.tripped:  # the error is the watch closing a silent session
            error = f"{sessions.tripped} ({error})"
        row_id = _log_failure(url, as_of, trigger, error)
        return RunSummary(
            "failed",
            as_of,
            None,
            row_id,
            duration_s=round(time.perf_counter() - started, 3),
            error=error,
            lock_scope="transaction",
        )
    finally:
        sessions.stop()
    summary = RunSummary.from_row(row)
    if summary.status == "skipped":
        warn_skipped(as_of, summary.holder)
    return replace(summary, duration_s=round(time.perf_counter() - started, 3))


def _log_failure(url: str, as_of: date, trigger: str, error: str) -> int | None:
    """The failed call's row, on a transaction of its own; None when it cannot be written."""
    try:
        with connect(url, application_name=APPLICATION_NAME, prepare_threshold=None) as session:
            row = session.one(
                "insert_failed_run_in_transaction",
                as_of=as_of,
                trigger=trigger,
                error=error[:MAX_ERROR_LENGTH],
            )
        return row["id"] if row else None
    except DatabaseError as exc:
        # The database that failed the call may refuse this too (a statement-mode
        # pooler refuses every transaction block): the summary still says why.
        log.warning("could not log the failed reminders run for %s: %s", as_of, exc)
        return None
