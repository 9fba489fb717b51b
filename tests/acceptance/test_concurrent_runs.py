"""Several `reminders run` processes at once: one runs, the others are skipped, no duplicates.

The first run is held inside its lock window by a SHARE lock on `notifications`
(see conftest.NotificationsGate): the others start only once it holds the advisory
lock, so the overlap is certain rather than likely. The launch storm starts eight
runs at the same instant with nothing held, several rounds, and checks only what
must hold whatever the timing.
"""

from __future__ import annotations

import time

import pytest
from dagster import DagsterInstance

from tests.helpers.runs import (
    assert_no_overlapping_windows,
    assert_notifications_are_exactly,
    assert_settled,
    assert_skipped_rows_name_a_holder,
    expected_due_set,
    expected_due_set_in_python,
    lock_holder,
    reset_notifications,
    run_rows,
    seed_assignments,
    today,
    trials_from_env,
    wait_for_run_at_the_gate,
)

pytestmark = pytest.mark.acceptance


def _start_first_run_and_hold_it(reminders_cli, notifications_gate, db_url, as_of):
    """Start a run, let it take the lock, and keep it waiting in dispatch."""
    gate = notifications_gate()
    first = reminders_cli.start("run", "--json", "--as-of", as_of.isoformat())
    holder, _ = wait_for_run_at_the_gate(db_url, first)
    return gate, first, holder


def test_second_run_is_skipped_while_first_holds_lock(
    reminders_cli, notifications_gate, db, db_url
):
    as_of = today()
    seed_assignments(db, 2_000, 0.3, as_of)
    expected = expected_due_set(db, as_of)
    assert expected == expected_due_set_in_python(db, as_of)
    assert len(expected) > 100

    gate, first, holder = _start_first_run_and_hold_it(
        reminders_cli, notifications_gate, db_url, as_of
    )
    second = reminders_cli("run", "--json", "--as-of", as_of.isoformat())
    # The first run was still inside its window the whole time the second one ran.
    assert first.alive()
    assert lock_holder(db_url) == holder
    gate.open()
    first_done = first.wait()

    assert first_done.returncode == 0, first_done.describe()
    assert second.returncode == 0, second.describe()
    a, b = first_done.json(), second.json()
    assert a["status"] == "success", first_done.describe()
    assert b["status"] == "skipped", second.describe()
    assert (a["selected"], a["created"], a["already_existed"]) == (len(expected), len(expected), 0)
    assert (b["selected"], b["created"]) == (0, 0)
    # The skipped run names the holder: its lock session's pid, name and Dagster run id.
    assert holder["application_name"] == f"reminders-run:{a['run_id']}"
    assert b["blocked_by"]["pid"] == holder["pid"]
    assert b["blocked_by"]["run_id"] == a["run_id"]

    rows = {r["dagster_run_id"]: r for r in run_rows(db)}
    assert set(rows) == {a["run_id"], b["run_id"]}
    ran, skipped = rows[a["run_id"]], rows[b["run_id"]]
    assert ran["status"] == "success" and ran["lock_backend_pid"] == holder["pid"]
    assert skipped["status"] == "skipped"
    assert skipped["blocked_by_pid"] == holder["pid"]
    assert skipped["blocked_by_application_name"] == f"reminders-run:{a['run_id']}"
    assert skipped["blocked_by_run_id"] == a["run_id"]
    assert ran["started_at"] <= skipped["started_at"] <= ran["finished_at"]
    assert_notifications_are_exactly(db, expected)
    assert lock_holder(db_url) is None


def test_eight_runs_at_once_give_one_success_and_seven_skipped(
    reminders_cli, notifications_gate, db, db_url
):
    as_of = today()
    seed_assignments(db, 2_000, 0.3, as_of)
    expected = expected_due_set(db, as_of)

    gate, first, holder = _start_first_run_and_hold_it(
        reminders_cli, notifications_gate, db_url, as_of
    )
    others = [reminders_cli.start("run", "--json", "--as-of", as_of.isoformat()) for _ in range(7)]
    finished_others = [child.wait() for child in others]
    assert first.alive(), "the first run ended while the others were still trying"
    gate.open()
    finished = [first.wait(), *finished_others]

    for done in finished:
        assert done.returncode == 0, done.describe()
    results = [done.json() for done in finished]
    statuses = sorted(r["status"] for r in results)
    assert statuses == ["skipped"] * 7 + ["success"], statuses
    winner = results[0]
    assert winner["status"] == "success" and winner["created"] == len(expected)
    for r in results[1:]:
        assert r["blocked_by"]["run_id"] == winner["run_id"]
        assert r["blocked_by"]["pid"] == holder["pid"]

    rows = run_rows(db)
    assert len(rows) == 8
    assert_no_overlapping_windows(rows)
    assert_skipped_rows_name_a_holder(rows)
    assert_notifications_are_exactly(db, expected)


STORM_ROUNDS = trials_from_env("REMINDERS_STORM_ROUNDS", 2)
STORM_SIZE = 8


def test_launch_storm_never_overlaps_or_duplicates(reminders_cli, db, db_url):
    """No gate: eight runs started at the same instant, several rounds; whatever the
    timing, at most one run holds the lock at any moment and every reminder exists once.

    Rounds: REMINDERS_STORM_ROUNDS (default 2; more by hand).
    """
    as_of = today()
    # Enough work (many small batches) that the runs are likely, not certain, to overlap.
    seed_assignments(db, 20_000, 0.5, as_of)
    expected = expected_due_set(db, as_of)
    # Create the Dagster instance's SQLite storage first: processes that create it
    # at the same instant race on its schema stamp (a Dagster storage limitation,
    # not what this test is about).
    DagsterInstance.get().dispose()

    for round_no in range(1, STORM_ROUNDS + 1):
        reset_notifications(db)
        rows_before = len(run_rows(db))
        started = time.monotonic()
        children = [
            reminders_cli.start(
                "run", "--json", "--as-of", as_of.isoformat(), env={"REMINDERS_BATCH_SIZE": "250"}
            )
            for _ in range(STORM_SIZE)
        ]
        finished = [child.wait() for child in children]
        elapsed = time.monotonic() - started

        for done in finished:
            assert done.returncode == 0, f"round {round_no}: {done.describe()}"
        results = [done.json() for done in finished]
        statuses = sorted(r["status"] for r in results)
        print(
            f"storm round {round_no}: {statuses.count('success')} success, "
            f"{statuses.count('skipped')} skipped in {elapsed:.1f}s"
        )
        assert set(statuses) <= {"success", "skipped"}, statuses
        successes = [r for r in results if r["status"] == "success"]
        assert successes, "no run succeeded"
        # The first success created everything; any later one found it all there.
        assert sum(r["created"] for r in successes) == len(expected)
        for r in successes:
            assert r["selected"] == len(expected)
            assert r["created"] + r["already_existed"] == len(expected)

        rows = run_rows(db)
        assert len(rows) == rows_before + STORM_SIZE
        assert_no_overlapping_windows(rows)
        assert_skipped_rows_name_a_holder(rows)
        assert_settled(db, db_url, expected)
