"""SIGTERM and SIGINT end a `reminders run` cleanly, with its INSERT in flight.

The run's only batch waits behind a SHARE lock on notifications (the gate),
which stays closed throughout: the INSERT can only leave the server because the
run cancelled it there. The server is checked while the process is still alive
and right after the signal, not after the process has gone.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.helpers.runs import (
    backends_waiting_on,
    lock_holder,
    run_rows,
    seed_assignments,
    today,
    wait_for,
    wait_for_run_at_the_gate,
)

pytestmark = pytest.mark.acceptance

ASSIGNMENTS = 20_000
# From the signal to the process gone: Dagster's end of run (events, teardown) included.
EXIT_WITHIN_S = 10


def active_run_statements(url: str) -> list[dict[str, Any]]:
    """Statements of any reminders run session that are still running on the server."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT pid, application_name, state, wait_event_type, query
            FROM pg_stat_activity
            WHERE datname = current_database()
              AND application_name LIKE 'reminders-run:%%'
              AND state = 'active'
            """
        ).fetchall()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_cancels_the_statement_on_the_server_records_failed_and_exits(
    reminders_cli, notifications_gate, db, db_url, sig
):
    as_of = today()
    seed_assignments(db, ASSIGNMENTS, 0.3, as_of)
    notifications_gate()
    run = reminders_cli.start("run", "--json", "--as-of", as_of.isoformat())
    wait_for_run_at_the_gate(db_url, run)

    sent = time.monotonic()
    run.popen.send_signal(sig)
    # The gate is still closed: only a cancel on the server ends the INSERT.
    wait_for(
        lambda: not backends_waiting_on(db_url, "notifications"),
        timeout=5,
        what=f"the run's INSERT to be cancelled on the server after {sig.name}",
    )
    # Cancelled, not merely unblocked: the INSERT is gone while the run is still alive.
    # (The lock session may be busy with its own last statements: the run's end.)
    assert not [s for s in active_run_statements(db_url) if "notifications" in s["query"]]
    cancelled_after = time.monotonic() - sent
    wait_for(lambda: lock_holder(db_url) is None, timeout=5, what="the lock to be released")
    finished = run.wait(timeout=EXIT_WITHIN_S)
    exited_after = time.monotonic() - sent
    wait_for(
        lambda: not active_run_statements(db_url),
        timeout=5,
        what="no statement of the run left on the server after it exited",
    )
    print(
        f"{sig.name}: INSERT cancelled after {cancelled_after:.2f}s, exit after {exited_after:.2f}s"
    )

    assert finished.returncode == 1, finished.describe()
    summary = finished.json()
    assert summary["status"] == "failed", finished.describe()
    assert summary["error"] == f"terminated by {sig.name}", summary["error"]
    [row] = run_rows(db)
    assert (row["status"], row["error"]) == ("failed", f"terminated by {sig.name}")
    assert row["finished_at"] is not None
    assert "another command is already in progress" not in finished.stderr
    assert exited_after < EXIT_WITHIN_S
