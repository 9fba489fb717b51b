"""The `reminders` command's entry point: a stop signal is heard from the first instruction.

Every `reminders run` leaves a row, even when SIGTERM or SIGINT comes while Python,
click and Dagster are still being imported (a second or more). So before any of
that, this module makes those signals only record themselves (core/stop_signals.py);
the run then ends as 'failed' naming the signal, prints its summary and exits
non-zero. The other commands keep the default behaviour: a signal ends them.
"""

from __future__ import annotations

import gc
import sys

# The commands that own a run and must log every invocation.
RUN_COMMANDS = frozenset({"run"})
# Objects allocated between two young-generation collections (Python's default: 700).
# Start-up creates a few hundred thousand long-lived objects (click, Dagster,
# SQLAlchemy, the Dagster instance) and almost no garbage; at 700 the collector
# keeps rescanning them, about 0.45 s of CPU in a 3 s `reminders run`
# (docs/benchmarks.md). At 10,000 the young generation holds at most a few MB.
YOUNG_GENERATION_THRESHOLD = 10_000


def _command(argv: list[str]) -> str | None:
    """The subcommand: the first argument that is not one of the group's options."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main() -> None:
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD)  # the older generations keep theirs
    if _command(sys.argv[1:]) in RUN_COMMANDS:
        from reminders_pipeline.core.stop_signals import record_early_signals

        record_early_signals()
    from reminders_pipeline.cli import main as cli_main

    cli_main()
