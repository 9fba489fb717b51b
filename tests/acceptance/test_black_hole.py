"""A peer that keeps the socket open but says nothing never holds the lock for long.

`reminders run` talks to PostgreSQL through a TCP proxy on a free loopback port.
Mid-run, with the run's INSERT waiting behind a gate, the proxy turns into a black
hole: it keeps every connection open, reads what arrives and forwards nothing
(both directions), or forwards nothing from the server (server_to_client). The
gate then opens, so the INSERT ends on the server and its session sits idle in
its transaction, holding the lock, with a client that will never speak again.

While the run's process is still alive, the server must end that session and free
the lock within REMINDERS_RUN_SILENCE_S (plus slack); a second run, straight to the
server, must then create exactly what an undisturbed run would; and the first
process must stop by itself and exit non-zero with a summary that says what
happened. Small settings keep the test under a minute.
"""

from __future__ import annotations

import signal
import time

import psycopg
import pytest

from tests.helpers.blackhole_proxy import BlackHoleProxy
from tests.helpers.runs import (
    assert_notifications_are_exactly,
    expected_due_set,
    lock_holder,
    run_rows,
    seed_assignments,
    today,
    wait_for,
    wait_for_run_at_the_gate,
)

pytestmark = pytest.mark.acceptance

ASSIGNMENTS = 5_000
SILENCE_S = 8
RECORD_RETRY_S = 15
# The server ends the silent session SILENCE_S after its last word; polling and
# pg_stat_activity's own latency get a few seconds more.
LOCK_FREE_WITHIN_S = SILENCE_S + 6
# The client: the watch trips within SILENCE_S + a probe interval and a probe's
# timeout, the run then retries its final write for RECORD_RETRY_S (each try
# waiting out a connect timeout of 10 s), and Dagster ends the run.
EXIT_WITHIN_S = SILENCE_S + 4 + RECORD_RETRY_S + 10 + 20


@pytest.mark.parametrize("direction", ["both", "server_to_client"])
def test_a_black_holed_run_frees_the_lock_and_stops_by_itself(
    reminders_cli, notifications_gate, db, db_url, direction
):
    as_of = today()
    seed_assignments(db, ASSIGNMENTS, 0.3, as_of)
    expected = expected_due_set(db, as_of)
    with BlackHoleProxy.to(db_url) as px:
        gate = notifications_gate()
        run = reminders_cli.start(
            "run",
            "--json",
            "--as-of",
            as_of.isoformat(),
            env={
                "REMINDERS_DATABASE_URL": px.url(db_url),
                "REMINDERS_RUN_SILENCE_S": str(SILENCE_S),
                "REMINDERS_RUN_RECORD_RETRY_S": str(RECORD_RETRY_S),
            },
        )
        wait_for_run_at_the_gate(db_url, run)
        [first_row] = run_rows(db)

        px.black_hole(direction)
        holed = time.monotonic()
        gate.open()  # the INSERT ends on the server; its answer goes nowhere

        wait_for(
            lambda: lock_holder(db_url) is None,
            timeout=LOCK_FREE_WITHIN_S,
            what="the server to end the silent run's session and free the lock",
        )
        freed_after = time.monotonic() - holed
        assert run.alive(), "the lock must be freed by the server, not by the run's exit"

        second = reminders_cli("run", "--json", "--as-of", as_of.isoformat())
        assert second.returncode == 0, second.describe()
        assert second.json()["status"] == "success"
        assert second.json()["created"] == len(expected)
        assert_notifications_are_exactly(db, expected)

        finished = run.wait(timeout=EXIT_WITHIN_S + 30)
        exited_after = time.monotonic() - holed
    print(f"{direction}: lock free after {freed_after:.1f}s, first run exited {exited_after:.1f}s")

    assert finished.returncode == 1, finished.describe()
    assert exited_after < EXIT_WITHIN_S, finished.describe()
    summary = finished.json()
    assert summary["status"] == "failed", finished.describe()
    assert summary["reminder_runs_id"] == first_row["id"]
    assert summary["created"] == 0  # its only batch never committed
    assert f"REMINDERS_RUN_SILENCE_S={SILENCE_S}" in summary["error"], summary["error"]
    rows = {r["id"]: r for r in run_rows(db)}
    # The second run found the first one's row 'running' and marked it abandoned.
    assert rows[first_row["id"]]["status"] == "abandoned"
    assert [r["status"] for r in rows.values()].count("success") == 1


STOP_SILENCE_S = 90  # far longer than the test: the watch must not be what stops the run


def test_a_signal_stops_a_black_holed_run_without_the_hung_path(
    reminders_cli, notifications_gate, db, db_url
):
    """SIGTERM (Dagster's terminate and max runtime send SIGINT, handled alike) ends a
    run whose server went silent: its cancel gets no answer, so after a grace the run
    closes its sessions itself, long before the silence bound."""
    as_of = today()
    seed_assignments(db, ASSIGNMENTS, 0.3, as_of)
    with BlackHoleProxy.to(db_url) as px:
        notifications_gate()  # stays closed: the INSERT waits on the server throughout
        run = reminders_cli.start(
            "run",
            "--json",
            "--as-of",
            as_of.isoformat(),
            env={
                "REMINDERS_DATABASE_URL": px.url(db_url),
                "REMINDERS_RUN_SILENCE_S": str(STOP_SILENCE_S),
                "REMINDERS_RUN_RECORD_RETRY_S": "5",
            },
        )
        wait_for_run_at_the_gate(db_url, run)
        [first_row] = run_rows(db)
        px.black_hole("both")
        sent = time.monotonic()
        run.popen.send_signal(signal.SIGTERM)
        finished = run.wait(timeout=STOP_SILENCE_S)
        exited_after = time.monotonic() - sent
    print(f"SIGTERM through a black hole: exited after {exited_after:.1f}s")

    assert finished.returncode == 1, finished.describe()
    # The grace (10 s), the final write's retries (5 s, each try up to a 10 s connect
    # timeout), Dagster's end of run; the silence bound plays no part.
    assert exited_after < 45, finished.describe()
    summary = finished.json()
    assert summary["status"] == "failed"
    assert summary["reminder_runs_id"] == first_row["id"]
    assert summary["error"].startswith("terminated by SIGTERM"), summary["error"]
    assert "could not be recorded" in summary["error"], summary["error"]


def day_call_waiting(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'reminders-run-day' AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


def test_a_black_holed_day_call_frees_the_transaction_lock(
    reminders_cli, notifications_gate, db, db_url
):
    """The day as one SQL call (REMINDERS_LOCK_SCOPE=transaction) is bounded the same
    way, with transaction-local settings: its transaction, and the lock with it, ends
    once its client has been silent for the bound."""
    as_of = today()
    seed_assignments(db, ASSIGNMENTS, 0.3, as_of)
    with BlackHoleProxy.to(db_url) as px:
        gate = notifications_gate()
        run = reminders_cli.start(
            "run",
            "--json",
            "--as-of",
            as_of.isoformat(),
            env={
                "REMINDERS_DATABASE_URL": px.url(db_url),
                "REMINDERS_LOCK_SCOPE": "transaction",
                "REMINDERS_RUN_SILENCE_S": str(SILENCE_S),
            },
        )
        wait_for(
            lambda: day_call_waiting(db_url),
            timeout=60,
            what="the day's call to wait behind the gate",
        )
        assert lock_holder(db_url) is not None
        px.black_hole("both")
        holed = time.monotonic()
        gate.open()
        wait_for(
            lambda: lock_holder(db_url) is None,
            timeout=LOCK_FREE_WITHIN_S,
            what="the server to end the silent call's transaction and free the lock",
        )
        assert run.alive(), "the lock must be freed by the server, not by the run's exit"
        finished = run.wait(timeout=EXIT_WITHIN_S + 30)
        exited_after = time.monotonic() - holed
    assert finished.returncode == 1, finished.describe()
    assert exited_after < EXIT_WITHIN_S, finished.describe()
    summary = finished.json()
    assert summary["status"] == "failed"
    assert f"REMINDERS_RUN_SILENCE_S={SILENCE_S}" in summary["error"], summary["error"]
    # All or nothing: the call's reminders went with its transaction.
    assert run_rows(db) == [] or all(r["status"] == "failed" for r in run_rows(db))
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM notifications").fetchone()["n"] == 0
