"""The `reminders` command's entry point: a stop signal is heard from the first instruction.

Every `reminders run` leaves a row, even when SIGTERM or SIGINT comes while Python,
click and Dagster are still being imported (a second or more). So before any of
that, this module makes those signals only record themselves (core/stop_signals.py);
the run then ends as 'failed' naming the signal, prints its summary and exits
non-zero. The other commands keep the default behaviour: a signal ends them.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading

# Objects allocated between two young-generation collections (Python's default: 700).
# Start-up creates a few hundred thousand long-lived objects (click, Dagster,
# SQLAlchemy, the Dagster instance) and almost no garbage; at 700 the collector
# keeps rescanning them, about 0.45 s of CPU in a 3 s `reminders run`
# (docs/benchmarks.md). At 10,000 the young generation holds at most a few MB.
YOUNG_GENERATION_THRESHOLD = 10_000
# The exit status Python gives a process whose stdout cannot be flushed at exit.
FLUSH_FAILED = 120


def _command(argv: list[str]) -> str | None:
    """The subcommand: the first argument that is not one of the group's options."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main() -> None:
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD)  # the older generations keep theirs
    is_run = _command(sys.argv[1:]) == "run"  # the command that must log every invocation
    if is_run:
        from reminders_pipeline.core.stop_signals import record_early_signals

        record_early_signals()
    from reminders_pipeline.cli import main as cli_main

    try:
        cli_main()
    except SystemExit as done:
        if is_run and (done.code is None or isinstance(done.code, int)):
            _exit_without_teardown(done.code or 0)
        raise


def _exit_without_teardown(status: int) -> None:
    """End the process once the run is recorded and its summary printed.

    What an exit must do still happens: the exit handlers (logging's flush,
    temporary files) and the flush of stdout and stderr; every database session
    of the run is closed by then. What is skipped is the interpreter freeing
    every module and object one by one: about 1 s of CPU after `reminders run`
    has printed its summary (docs/benchmarks.md). Not while another thread of
    ours would still have to be waited for: then the ordinary exit.
    """
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        raise SystemExit(status)
    atexit._run_exitfuncs()  # what Py_Finalize would run first (no public name)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed pipe or stream: the interpreter's status
            status = FLUSH_FAILED
    os._exit(status)
