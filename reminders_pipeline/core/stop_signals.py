"""How a run hears SIGTERM and SIGINT: within a step, and between two steps.

Within a step the run's own handlers stop it (handling_stop_signals). Between
steps (between two Dagster ops) the handler in place is Dagster's, which only
keeps the next op from starting, and Dagster puts its own back around every op.
Whatever Python handler runs, the interpreter also writes each signal's number
to the wakeup fd: WakeupWatch reads it, so the signal is recorded by name.
Before either, from the first instruction of `reminders run` (reminders_pipeline/
entry.py), record_early_signals() only records a signal: the run, once it
exists, ends as failed naming it. No Dagster here.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How often, after a signal, the lock session is checked for a statement to cancel.
CANCEL_POLL_S = 0.1
# How long a cancelled statement may take to end before the run closes its sessions
# (a server that answers nothing never answers the cancel either).
STOP_GRACE_S = 10.0


def stop_reason(signum: int) -> str:
    return f"terminated by {signal.Signals(signum).name}"


class WakeupWatch:
    """SIGTERM/SIGINT that reached the process, read from the interpreter's wakeup fd."""

    def __init__(self) -> None:
        self._pipe: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Watch until stop(); only the main thread can (elsewhere a no-op)."""
        if self._pipe is not None:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._pipe = (read_end, write_end, previous)

    def received(self) -> str | None:
        """The reason for a stop signal received since the last look, or None."""
        if self._pipe is None:
            return None
        try:
            received = os.read(self._pipe[0], 512)
        except BlockingIOError:
            return None
        for signum in received:
            if signum in STOP_SIGNALS:
                return stop_reason(signum)
        return None

    def stop(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is None:
            return
        read_end, write_end, previous = pipe
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)


# A stop signal received during start-up (record_early_signals), and its watch.
_early: list[str] = []
_early_watch = WakeupWatch()


def record_early_signals() -> None:
    """From now on SIGTERM and SIGINT only record themselves, until a run reads them.

    Called before the heavy imports; a handler installed later (Dagster's, the
    run's) takes over, and the wakeup fd still records what reaches it meanwhile.
    """

    def record(signum: int, _frame: object) -> None:
        _early.append(stop_reason(signum))

    for sig in STOP_SIGNALS:
        signal.signal(sig, record)
    _early_watch.start()


def early_stop_reason() -> str | None:
    """Why the process was asked to stop before its run could hear it, or None."""
    reason = _early_watch.received()
    if reason is not None:
        _early.append(reason)
    return _early[0] if _early else None


def ignore_stop_signals() -> None:
    """Ignore SIGTERM and SIGINT from now on (the run's outcome is printed; exiting).

    Python puts the default action back for its own handlers while it shuts down,
    and a signal then would end the process with the signal's status instead of
    the outcome's; an ignored signal stays ignored.
    """
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


@contextmanager
def handling_stop_signals(on_stop: Callable[[str], None]) -> Iterator[None]:
    """While a step runs, SIGTERM/SIGINT call on_stop instead of raising mid-statement.

    An exception raised from a signal handler inside the driver's wait (Dagster
    raises DagsterExecutionInterruptedError there) leaves the statement running
    on the server; on_stop cancels it there and lets the step fail cleanly.
    The handlers that were installed (Dagster's, or Python's) come back after.
    Signal handlers can only be set from the main thread; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def on_signal(signum: int, _frame: object) -> None:
        log.warning("%s received: stopping the reminders run", signal.Signals(signum).name)
        on_stop(stop_reason(signum))

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def cancel_until(done: threading.Event, cancel: Callable[[], None]) -> threading.Thread:
    """A thread that calls cancel every CANCEL_POLL_S until done is set.

    A signal handler's cancel only reaches a statement already in flight; one that
    starts a moment later (the check before it had passed) is caught by this thread.
    """

    def run() -> None:
        while not done.wait(CANCEL_POLL_S):
            cancel()

    thread = threading.Thread(target=run, name="reminders-run-cancel", daemon=True)
    thread.start()
    return thread
