"""ReminderRun's guarantees with fakes: logic only (the real lock is tested on PostgreSQL)."""

from __future__ import annotations

import signal
import threading

import pytest

from reminders_pipeline.core.run import ReminderRun
from reminders_pipeline.core.runlog import RunCounts
from reminders_pipeline.errors import RunInterrupted
from tests.helpers.run_fakes import (
    AS_OF,
    HOLDER,
    FakeLock,
    FakeRunLog,
    RecordingDispatcher,
    RecordingScheduler,
)


def make_run(lock, scheduler=None, dispatcher=None):
    log = FakeRunLog()
    run = ReminderRun(
        lock=lock,
        runlog=log,
        scheduler=scheduler or RecordingScheduler(),
        dispatcher=dispatcher or RecordingDispatcher(),
        dagster_run_id="this-run",
    )
    return run, log


def test_busy_lock_writes_skipped_and_never_calls_the_services():
    scheduler, dispatcher = RecordingScheduler(), RecordingDispatcher()
    run, log = make_run(FakeLock(free=False), scheduler, dispatcher)

    summary = run.execute(AS_OF)

    assert summary.status == "skipped"
    assert summary.holder == HOLDER
    assert scheduler.calls == 0 and dispatcher.calls == 0
    assert [r["status"] for r in log.rows.values()] == ["skipped"]
    assert log.rows[1]["holder"] == HOLDER


def test_free_lock_runs_every_step_and_releases():
    lock = FakeLock(free=True)
    run, log = make_run(lock)

    summary = run.execute(AS_OF)

    assert summary.status == "success"
    assert (summary.selected, summary.created) == (2, 2)
    assert log.rows[1]["status"] == "success"
    assert lock.closed and not lock.held


@pytest.mark.parametrize("failing", ["scheduler", "dispatcher"])
def test_service_error_records_failed_and_releases_the_lock(failing):
    lock = FakeLock(free=True)
    error = RuntimeError("boom")
    run, log = make_run(
        lock,
        scheduler=RecordingScheduler(error if failing == "scheduler" else None),
        dispatcher=RecordingDispatcher(error if failing == "dispatcher" else None),
    )

    with pytest.raises(RuntimeError, match="boom"):
        run.execute(AS_OF)

    assert log.rows[1]["status"] == "failed"
    assert "RuntimeError: boom" in log.rows[1]["error"]
    assert lock.closed and not lock.held


def test_close_fails_a_run_whose_later_steps_never_ran():
    """Dagster skips ops after a failed one; the resource's close() still ends the run."""
    lock = FakeLock(free=True)
    run, log = make_run(lock)
    run.start(AS_OF)
    run.select()

    run.close()

    assert log.rows[1]["status"] == "failed"
    assert "ended before it finished" in log.rows[1]["error"]
    assert lock.closed


def test_a_real_signal_between_steps_is_recorded_by_name():
    """Between two Dagster ops the run's handler is still the one in place."""
    import os

    lock = FakeLock(free=True)
    scheduler, dispatcher = RecordingScheduler(), RecordingDispatcher()
    run, log = make_run(lock, scheduler, dispatcher)
    passed_on: list[int] = []
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        # Stands for Dagster's handler between ops: it only notes the interrupt, and
        # Dagster puts it back around every op, whatever the run installed.
        for s in before:
            signal.signal(s, lambda signum, frame: passed_on.append(signum))
        run.watch_signals_between_steps()
        run.start(AS_OF)
        os.kill(os.getpid(), signal.SIGTERM)  # after the first step, before the next

        with pytest.raises(RunInterrupted, match="terminated by SIGTERM"):
            run.select()
        run.close()
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)

    assert passed_on == [signal.SIGTERM], "the handler in place (Dagster's) still runs"
    assert scheduler.calls == 0 and dispatcher.calls == 0
    assert log.rows[1]["error"] == "terminated by SIGTERM"
    assert lock.closed


class SignalledDispatcher:
    """Receives a real signal in the middle of its work, then keeps going batch by batch."""

    def __init__(self, sig: int) -> None:
        self.sig = sig
        self.batches = 0

    def dispatch(self, as_of, run_row_id, *, transaction, before_batch, on_progress):
        import os

        before_batch()
        with transaction():
            self.batches += 1
            os.kill(os.getpid(), self.sig)  # handled at once, in this (the main) thread
        while True:  # the next batch must not start
            before_batch()
            with transaction():
                self.batches += 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_before_its_next_statement_and_records_it(sig):
    lock = FakeLock(free=True)
    dispatcher = SignalledDispatcher(sig)
    run, log = make_run(lock, dispatcher=dispatcher)
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    with pytest.raises(RunInterrupted, match=f"terminated by {sig.name}"):
        run.execute(AS_OF)

    assert dispatcher.batches == 1
    assert getattr(lock, "cancelled", False), "the statement in flight is cancelled"
    assert log.rows[1]["status"] == "failed"
    assert log.rows[1]["error"] == f"terminated by {sig.name}"
    assert lock.closed and not lock.held
    # The handlers that were there before (pytest's, Python's) are back.
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_signal_between_steps_stops_the_next_one():
    lock = FakeLock(free=True)
    scheduler, dispatcher = RecordingScheduler(), RecordingDispatcher()
    run, log = make_run(lock, scheduler, dispatcher)
    run.start(AS_OF)
    run.interrupt("terminated by SIGTERM")

    with pytest.raises(RunInterrupted):
        run.select()

    assert scheduler.calls == 0 and dispatcher.calls == 0
    assert log.rows[1] == {"status": "failed", "as_of": AS_OF, "error": "terminated by SIGTERM"}
    assert lock.closed


class BusyAfterSignalLock(FakeLock):
    """A lock session whose statement starts just after the signal was handled."""

    def __init__(self) -> None:
        super().__init__(free=True)
        self.busy = False
        self.cancelled_in_flight = threading.Event()

    def cancel(self) -> None:
        if self.busy:  # like RunLock.cancel: only a statement in flight is cancelled
            self.cancelled_in_flight.set()


class StatementAfterSignalDispatcher:
    def __init__(self) -> None:
        self.run: ReminderRun | None = None

    def dispatch(self, as_of, run_row_id, *, transaction, before_batch, on_progress):
        assert self.run is not None
        lock = self.run.lock
        before_batch()  # passes: no signal yet
        self.run.interrupt("terminated by SIGTERM")  # the signal, before the statement is sent
        lock.busy = True  # the statement is sent all the same
        if lock.cancelled_in_flight.wait(timeout=2):
            raise RuntimeError("canceling statement due to user request")
        lock.busy = False  # never cancelled: the statement ran to its end
        return RunCounts(selected=2, created=2, already_existed=0)


def test_a_statement_sent_just_after_the_signal_is_cancelled_too():
    lock, dispatcher = BusyAfterSignalLock(), StatementAfterSignalDispatcher()
    run, log = make_run(lock, dispatcher=dispatcher)
    dispatcher.run = run

    with pytest.raises(RunInterrupted, match="terminated by SIGTERM"):
        run.execute(AS_OF)

    assert lock.cancelled_in_flight.is_set(), "the statement sent after the signal ran on"
    assert log.rows[1]["status"] == "failed"
    assert log.rows[1]["error"] == "terminated by SIGTERM"
