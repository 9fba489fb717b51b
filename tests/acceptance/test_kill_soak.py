"""Kill soak: `reminders run` killed (SIGKILL) or terminated (SIGTERM) at random moments.

Each trial forgets every reminder, starts a real `reminders run` with small batches,
signals it at a random moment (anywhere in its life, inside its lock window, or
while one of its statements waits on the server behind a SHARE lock on
`notifications`), checks the server at once, then runs again undisturbed and checks that the
reminders equal the undisturbed set and that nothing is left behind.

Trials: REMINDERS_SOAK_TRIALS (default 6, each signal at each kind of moment;
30 by hand). The random generator is
seeded from REMINDERS_SOAK_SEED, or at random; the seed is printed so a failing
sequence can be replayed:

    REMINDERS_SOAK_SEED=<seed> REMINDERS_SOAK_TRIALS=30 python3 dev.py test \
        tests/acceptance/test_kill_soak.py -s

SIGTERM is checked against the intended behaviour (docs: a signal ends a run
cleanly): the process exits non-zero within TERM_EXIT_S, its run is recorded
`failed` naming SIGTERM (never left `running`), the lock is free and no statement
of the run is left on the server shortly after it exits.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import time

import pytest

from reminders_pipeline.db.connector import Database
from tests.helpers.runs import (
    Finished,
    NotificationsGate,
    assert_settled,
    backends_waiting_on,
    client_sessions,
    expected_due_set,
    expected_due_set_in_python,
    lock_holder,
    reset_notifications,
    run_rows,
    seed_assignments,
    today,
    trials_from_env,
    wait_for,
    wait_for_run_holding_lock,
)

pytestmark = pytest.mark.acceptance

AIMS = ("anywhere", "lock window", "blocked in dispatch")
COMBINATIONS = list(itertools.product((signal.SIGKILL, signal.SIGTERM), AIMS))
# Default: each combination once.
TRIALS = trials_from_env("REMINDERS_SOAK_TRIALS", len(COMBINATIONS))
ASSIGNMENTS = 20_000
# Small batches: the run commits dozens of batches, so a kill lands between or
# inside them, not only before the first.
BATCH = {"REMINDERS_BATCH_SIZE": "300"}
# "Promptly": the run stops before its next statement and cancels the one in flight.
TERM_EXIT_S = 10
# A dead client's backend ends once it notices the closed socket.
SERVER_CLEAN_S = 5


def _soak_seed() -> int:
    raw = os.environ.get("REMINDERS_SOAK_SEED", "").strip()
    return int(raw) if raw else random.SystemRandom().randrange(2**32)


def test_runs_killed_at_random_moments_leave_nothing_behind(reminders_cli, db, db_url):
    seed = _soak_seed()
    rng = random.Random(seed)
    print(f"kill soak: REMINDERS_SOAK_SEED={seed} REMINDERS_SOAK_TRIALS={TRIALS}")
    as_of = today()
    seed_assignments(db, ASSIGNMENTS, 0.4, as_of)
    expected = expected_due_set(db, as_of)
    assert expected == expected_due_set_in_python(db, as_of)
    run_args = ("run", "--json", "--as-of", as_of.isoformat())

    # The undisturbed run: the reference set, and how long a run and its lock window last.
    started = time.monotonic()
    baseline = reminders_cli(*run_args, env=BATCH)
    lifetime = time.monotonic() - started
    assert baseline.returncode == 0, baseline.describe()
    assert baseline.json()["created"] == len(expected), baseline.describe()
    assert_settled(db, db_url, expected)
    [row] = run_rows(db)
    window = (row["finished_at"] - row["started_at"]).total_seconds()
    print(f"undisturbed: process {lifetime:.2f}s, lock window {window:.2f}s")

    outcomes = []
    # What the signalled run left, gathered over all trials and reported at the end, so
    # one broken promise does not hide the others (every invariant after the rerun
    # is asserted at once).
    problems: list[str] = []
    plan: list[tuple[signal.Signals, str]] = []
    for trial in range(1, TRIALS + 1):
        if not plan:  # every (signal, aim) once per len(COMBINATIONS) trials, in random order
            plan = rng.sample(COMBINATIONS, len(COMBINATIONS))
        sig, aim = plan.pop()
        delay = {
            "anywhere": rng.uniform(0, lifetime),
            "lock window": rng.uniform(0, window),
            "blocked in dispatch": rng.uniform(0, 0.5),
        }[aim]
        context = f"trial {trial}/{TRIALS} (seed {seed}): {sig.name} {aim} +{delay:.2f}s"
        print(context)
        reset_notifications(db)
        rows_before = {r["id"] for r in run_rows(db)}

        # Blocked: a statement of the run waits on the server (its INSERT behind a
        # SHARE lock on notifications) when the signal comes.
        gate = NotificationsGate(db_url) if aim == "blocked in dispatch" else None
        victim = reminders_cli.start(*run_args, env=BATCH)
        if aim != "anywhere":
            wait_for_run_holding_lock(db_url, victim)
        if gate is not None:
            wait_for(
                lambda: backends_waiting_on(db_url, "notifications"),
                timeout=60,
                what="the run to wait in dispatch",
            )
        time.sleep(delay)
        was_alive = victim.alive()
        victim.popen.send_signal(sig)
        sent_at = time.monotonic()
        done = victim.wait(timeout=TERM_EXIT_S if sig == signal.SIGTERM else 10)
        exit_s = time.monotonic() - sent_at
        outcomes.append((sig.name, aim, was_alive, done.returncode, round(exit_s, 2)))
        print(f"  exit {done.returncode} {exit_s:.2f}s after the signal (alive: {was_alive})")

        if gate is not None and sig == signal.SIGKILL:
            # Nothing can cancel a killed client's statement: its backend ends when
            # the statement does and it finds the socket closed.
            gate.open()
        try:
            if was_alive:
                found = _after_signal(db, db_url, sig, done, rows_before, gate)
                problems.extend(f"{context}: {p}" for p in found)
        finally:
            if gate is not None:
                gate.open()

        rerun = reminders_cli(*run_args, env=BATCH)
        assert rerun.returncode == 0, f"{context}\n{rerun.describe()}"
        summary = rerun.json()
        assert summary["status"] == "success", f"{context}\n{rerun.describe()}"
        assert summary["selected"] == len(expected), context
        assert summary["created"] + summary["already_existed"] == len(expected), context
        assert_settled(db, db_url, expected)

    print("outcomes (signal, aim, alive, exit code, seconds to exit):")
    for outcome in outcomes:
        print(f"  {outcome}")
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)


def _after_signal(
    db: Database,
    db_url: str,
    sig: signal.Signals,
    done: Finished,
    rows_before: set[int],
    gate: NotificationsGate | None,
) -> list[str]:
    """What is wrong right after a signalled run exited, before anything else runs."""
    problems = []
    own = [r for r in run_rows(db) if r["id"] not in rows_before]
    # Exit 0 only for a run that had already finished its work when the signal came.
    if done.returncode == 0 and [r["status"] for r in own] != ["success"]:
        problems.append(f"exit code 0 after {sig.name}\n{done.describe()}")
    deadline = time.monotonic() + SERVER_CLEAN_S
    # The lock session by its name, and any other connection of the run still
    # running a statement (the gate's session is the test's own).
    exclude = (gate.pid,) if gate is not None and not gate.conn.closed else ()
    while (sessions := client_sessions(db_url, exclude)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if sessions:
        problems.append(
            f"{SERVER_CLEAN_S}s after exit, its sessions are still on the server: {sessions}"
        )
    if (holder := lock_holder(db_url)) is not None:
        problems.append(f"the run lock is still held after exit: {holder}")
    if sig == signal.SIGTERM:
        # A terminated run records its own end: only a killed one is left 'running'
        # for the next run to mark 'abandoned'.
        for row in own:
            if row["status"] == "running":
                problems.append(f"its run row {row['id']} is left 'running' after SIGTERM")
            elif row["status"] == "failed" and "SIGTERM" not in (row["error"] or ""):
                problems.append(
                    f"its run row {row['id']} is 'failed' without naming SIGTERM: {row['error']!r}"
                )
    return problems
