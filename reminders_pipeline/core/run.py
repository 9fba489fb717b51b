"""One invocation of the reminders job: lock -> select -> dispatch -> log.

ReminderRun holds the steps the Dagster ops call, one per op, and makes the
guarantees hold whatever calls them: a run that does not get the lock writes
'skipped' and never touches the scheduler or dispatch services; an error in
any step writes 'failed' and releases the lock at once; close() (resource
teardown, or a `finally`) releases it on every other path. No Dagster here.

The dispatch batches and the 'success' row go through the lock's own session,
so the run's writes live exactly as long as its lock. SIGTERM and SIGINT stop
the run (core/stop_signals.py): the statement in flight is cancelled on the
server, no further statement starts, the run is recorded 'failed' naming the
signal, and the lock is released. A server silent for too long stops it too
(the watch, db/run_sessions.py), and the run is recorded 'failed' naming that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from typing import Any

from reminders_pipeline.core.dispatch import BatchProgress, ReminderDispatchService
from reminders_pipeline.core.due import DueSelection, ReminderSchedulerService
from reminders_pipeline.core.run_ports import Lock, Watch
from reminders_pipeline.core.runlog import RunCounts, RunLog, RunSummary, unrecorded, warn_skipped
from reminders_pipeline.core.stop_signals import (
    STOP_GRACE_S,
    WakeupWatch,
    cancel_until,
    early_stop_reason,
    handling_stop_signals,
)
from reminders_pipeline.errors import RunInterrupted, first_line

log = logging.getLogger(__name__)
UNFINISHED = "the run ended before it finished (an earlier step failed or was stopped)"


class ReminderRun:
    def __init__(
        self,
        *,
        lock: Lock,
        runlog: RunLog,
        scheduler: ReminderSchedulerService,
        dispatcher: ReminderDispatchService,
        dagster_run_id: str | None = None,
        trigger: str = "manual",
        watch: Watch | None = None,
    ) -> None:
        self.lock = lock
        self.watch = watch
        self.runlog = runlog
        self.scheduler = scheduler
        self.dispatcher = dispatcher
        self.dagster_run_id = dagster_run_id
        self.trigger = trigger
        self.as_of: date | None = None
        self.run_row_id: int | None = None
        self.summary: RunSummary | None = None
        self.selection: DueSelection | None = None
        self.planned_as_of: date | None = None  # the day, when known before start()
        # Whether the run's row says how it ended (False: the database was away).
        self.outcome_recorded = False
        self._lock_open = False
        self._started = 0.0
        self._counts = RunCounts()
        self._stop_reason: str | None = None
        self._cancelling: threading.Thread | None = None
        self._done = threading.Event()
        self._signals = WakeupWatch()
        # Turns "terminated by SIGINT" into what is known about who sent it (the
        # Dagster resource asks the instance whether the run is being terminated).
        self.describe_stop: Callable[[str], str] = lambda reason: reason

    # -- steps -----------------------------------------------------------------

    def start(self, as_of: date) -> RunSummary | None:
        """Take the lock. Returns None when acquired, or the 'skipped' summary."""
        self.as_of = as_of
        self._started = time.perf_counter()
        self.watch and self.watch.start()
        with self._failing_on_error():
            self.lock.__enter__()
            self._lock_open = True
            self._raise_if_stopped()
            acquired = self.lock.try_acquire()
            holder = None if acquired else self.lock.holder()
        if not acquired:
            self._close_lock()
            self.run_row_id = self.runlog.skipped(as_of, self.dagster_run_id, self.trigger, holder)
            self.outcome_recorded = True
            warn_skipped(as_of, holder)
            self.summary = self._summary("skipped", holder=holder)
            return self.summary
        with self._failing_on_error():
            self.runlog.mark_abandoned()
            self.run_row_id = self.runlog.start(
                as_of, self.dagster_run_id, self.trigger, self.lock.backend_pid
            )
        return None

    def ensure_started(self, as_of: date) -> RunSummary | None:
        """start() unless done: a re-execution from failure begins at a later step."""
        if self.as_of is None:
            return self.start(as_of)
        return None

    def select(self) -> DueSelection:
        assert self.as_of is not None, "start() first"
        with self._failing_on_error():
            self.selection = self.scheduler.select_due(self.as_of)
            return self.selection

    def dispatch(
        self, on_progress: Callable[[BatchProgress], None] = lambda progress: None
    ) -> RunCounts:
        assert self.as_of is not None, "start() first"

        def track(progress: BatchProgress) -> None:
            self._counts = progress.counts
            on_progress(progress)

        def before_batch() -> None:
            self._raise_if_stopped()
            self.lock.ensure_held()

        with self._failing_on_error():
            self._counts = self.dispatcher.dispatch(
                self.as_of,
                self.run_row_id,
                transaction=self.lock.transaction,
                before_batch=before_batch,
                on_progress=track,
            )
            # The last batch committed on the lock's session; make sure it still holds.
            self.lock.ensure_held()
            return self._counts

    def finish(self) -> RunSummary:
        """Record success, through the lock's own session while it holds the lock, and release."""
        assert self.run_row_id is not None, "start() first"
        with self._failing_on_error():
            self.lock.ensure_held()
            with self.lock.transaction() as conn:
                self.runlog.succeeded(self.run_row_id, self._counts, conn)
            self.outcome_recorded = True
        self._close_lock()
        self.summary = self._summary("success")
        return self.summary

    def fail(self, error: str) -> RunSummary:
        """Record failure and release the lock. Safe to call more than once."""
        self._done.set()
        if self.summary is not None:
            return self.summary
        if self.selection is not None:  # the log and summary say how many were due
            self._counts = self._counts.with_due(self.selection.due)
        try:
            if self.run_row_id is not None:
                self.runlog.failed(self.run_row_id, error, self._counts)
                self.outcome_recorded = True
            elif self.as_of is not None:
                # Best effort: the database that refused the lock may refuse this too.
                self.run_row_id = self.runlog.failed_before_start(
                    self.as_of, self.dagster_run_id, self.trigger, error
                )
                self.outcome_recorded = True
        except Exception as exc:  # the database stayed away past the retry bound
            error = unrecorded(error, exc, self.run_row_id)
            log.exception("reminders run for %s: %s", self.as_of, error)
        finally:
            self._close_lock()
            self.summary = self._summary("failed", error=error)
        return self.summary

    def interrupt(self, reason: str) -> None:
        """Stop the run: no further statement starts, the one in flight is cancelled.

        Called from a signal handler (or another thread); the step that is running
        then fails with RunInterrupted and records `reason`.
        """
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._lock_open:
            # A silent server never answers the cancel: its sessions close after a grace.
            self.watch and self.watch.give_up_after(STOP_GRACE_S, reason)
            self.lock.cancel()
            if self._cancelling is None:
                # A statement sent between the last check and the signal is cancelled
                # too: whatever runs on the lock session, until the run has recorded its end.
                self._cancelling = cancel_until(self._done, self._cancel_if_open)

    def watch_signals_between_steps(self) -> None:
        """Until close(), a SIGTERM/SIGINT between two steps is the run's too (read from
        the interpreter's wakeup fd before each step and at close: core/stop_signals.py)."""
        self._signals.start()

    def _note_signals(self) -> None:
        """Record a SIGTERM/SIGINT that reached the process since the last look,
        or during start-up (the entry point: reminders_pipeline/entry.py)."""
        reason = self._signals.received() or early_stop_reason()
        if reason is not None:
            self.interrupt(reason)

    def close(self) -> None:
        """End of the run, however it went: an unfinished run is failed, the lock released."""
        try:
            self._note_signals()
            if self.as_of is None and self._stop_reason is not None:
                # Stopped before its first step (Dagster starting): log it all the same.
                self.as_of, self._started = self.planned_as_of, time.perf_counter()
            stopped = self._stop_reason is not None and self.as_of is not None
            if self.summary is None and (self._lock_open or stopped):
                reason = self._stop_reason
                self.fail(self.describe_stop(reason) if reason else UNFINISHED)
            self._close_lock()
        finally:
            self._signals.stop()
            if self.watch is not None:
                self.watch.stop()

    def execute(self, as_of: date) -> RunSummary:
        """The whole run without Dagster."""
        try:
            skipped = self.start(as_of)
            if skipped is not None:
                return skipped
            self.select()
            self.dispatch()
            return self.finish()
        finally:
            self.close()

    # -- internals -------------------------------------------------------------

    @contextmanager
    def _failing_on_error(self) -> Iterator[None]:
        with handling_stop_signals(self.interrupt):
            try:
                # Stop before the next statement when a signal came between steps.
                self._raise_if_stopped()
                yield
            except BaseException as exc:
                if self._stop_reason is not None:
                    # The error is the cancellation (or what followed it): name the cause.
                    reason = self.describe_stop(self._stop_reason)
                    self.fail(reason)
                    if isinstance(exc, RunInterrupted):
                        raise
                    raise RunInterrupted(reason) from exc
                error = f"{type(exc).__name__}: {exc}".strip()
                if self.watch is not None and self.watch.tripped:
                    # The error is the watchdog closing a silent session: name the cause.
                    error = f"{self.watch.tripped} ({first_line(error)})"
                self.fail(error)
                raise

    def _cancel_if_open(self) -> None:
        if self._lock_open:
            self.lock.cancel()

    def _raise_if_stopped(self) -> None:
        self._note_signals()
        if self._stop_reason is not None:
            raise RunInterrupted(self._stop_reason)

    def _close_lock(self) -> None:
        self._done.set()
        if self._lock_open:
            self._lock_open = False
            self.lock.close()

    def _summary(self, status: str, **extra: Any) -> RunSummary:
        assert self.as_of is not None
        elapsed_s = round(time.perf_counter() - self._started, 3)
        return RunSummary(
            status, self.as_of, self.dagster_run_id, self.run_row_id,
            **asdict(self._counts), duration_s=elapsed_s, **extra,
        )  # fmt: skip
