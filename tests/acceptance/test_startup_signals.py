"""A SIGTERM during start-up still leaves a row, a JSON summary and a truthful exit.

`reminders run --json` spends its first seconds importing Python, click and
Dagster and setting up the run. Each trial sends SIGTERM at a random moment of
its first ~3 s (the first trial at 0.2 s) and checks that the invocation left
exactly one new reminder_runs row: 'failed' naming SIGTERM with exit 1, or, when
the signal came after the run had recorded its outcome, 'success' with exit 0;
that stdout holds the one JSON summary naming that row; and that the lock is free.

The moment is counted from the process's start, but never before its entry point
has installed its handlers (SigCgt in /proc/PID/status): before that, no Python
code of ours has run, and the default action is all there is.

Trials: REMINDERS_STARTUP_SIGNAL_TRIALS (default 4; 40 by hand), seeded from
REMINDERS_STARTUP_SIGNAL_SEED or at random (printed, to replay a sequence).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.runs import (
    lock_holder,
    run_rows,
    seed_assignments,
    today,
    trials_from_env,
    wait_for,
)

pytestmark = pytest.mark.acceptance

TRIALS = trials_from_env("REMINDERS_STARTUP_SIGNAL_TRIALS", 4)
FIRST_DELAY_S = 0.2
LATEST_S = 3.0


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (its SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True  # gone: nothing left to wait for
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


def test_sigterm_at_any_moment_of_start_up_leaves_a_row_and_a_summary(reminders_cli, db, db_url):
    seed = int(os.environ.get("REMINDERS_STARTUP_SIGNAL_SEED") or random.randrange(2**32))
    print(f"REMINDERS_STARTUP_SIGNAL_SEED={seed}")
    rng = random.Random(seed)
    as_of = today()
    seed_assignments(db, 2_000, 0.3, as_of)
    outcomes = []
    for trial in range(TRIALS):
        delay = FIRST_DELAY_S if trial == 0 else rng.uniform(FIRST_DELAY_S, LATEST_S)
        before = {r["id"] for r in run_rows(db)}
        run = reminders_cli.start("run", "--json", "--as-of", as_of.isoformat())
        started = time.monotonic()
        wait_for(
            lambda pid=run.pid: catches_sigterm(pid),
            timeout=30,
            interval=0.005,
            what="the entry point to install its handlers",
        )
        time.sleep(max(0.0, delay - (time.monotonic() - started)))
        if run.alive():
            run.popen.send_signal(signal.SIGTERM)
        finished = run.wait(timeout=60)

        summary = finished.json()
        new = [r for r in run_rows(db) if r["id"] not in before]
        assert len(new) == 1, f"trial {trial} (SIGTERM at {delay:.2f}s): rows {new}"
        [row] = new
        assert summary["reminder_runs_id"] == row["id"], finished.describe()
        assert summary["status"] == row["status"], finished.describe()
        if row["status"] == "failed":
            assert row["error"].startswith("terminated by SIGTERM"), row["error"]
            assert summary["error"] == row["error"]
            assert finished.returncode == 1, finished.describe()
        else:
            assert row["status"] == "success", row
            assert finished.returncode == 0, finished.describe()
        assert lock_holder(db_url) is None
        outcomes.append(f"{delay:.2f}s: {row['status']}")
    print("; ".join(outcomes))
    assert outcomes[0].endswith("failed"), "a SIGTERM 0.2 s after start must fail the run"
