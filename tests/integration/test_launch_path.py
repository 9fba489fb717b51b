"""The real launch path keeps one lock session from acquire_run_lock to release_run_lock.

`execute_in_process` ignores the job's executor, so it cannot show this. Here a
child process runs the job the way a launcher does, `execute_job(reconstructable(
reminders_job), instance=DagsterInstance.get(), ...)`, while the test holds it at
two points in the database (a lock on `assignments` stops select_due_assignments,
a lock on `notifications` stops dispatch_reminders) and looks at pg_locks from
outside each time. With a multi-process executor every op would open its own
session, and the lock taken in acquire_run_lock would be gone by the time select ran.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers.runs import (
    Child,
    RemindersCli,
    assert_notifications_are_exactly,
    expected_due_set,
    lock_holder,
    run_rows,
    seed_assignments,
    today,
    wait_for,
    wait_for_run_holding_lock,
)

pytestmark = pytest.mark.acceptance

LAUNCH = """
import json, sys
from dagster import DagsterEventType, DagsterInstance, execute_job, reconstructable
from reminders_pipeline.orchestration.definitions import resolved_reminders_job

with DagsterInstance.get() as instance:
    result = execute_job(
        reconstructable(resolved_reminders_job),
        instance=instance,
        tags={"dagster/partition": sys.argv[1]},
    )
    outputs, step_pids = {}, {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_OUTPUT:
            data = event.event_specific_data
            name = f"{event.step_key}.{data.step_output_handle.output_name}"
            outputs[name] = {k: v.value for k, v in data.metadata.items()}
        if event.event_type == DagsterEventType.STEP_START:
            step_pids[event.step_key] = event.pid
    print(json.dumps({"run_id": result.run_id, "success": result.success,
                      "outputs": outputs, "step_pids": step_pids}))
"""


@pytest.fixture
def launcher(reminders_env: dict[str, str], tmp_path: Path) -> Iterator[RemindersCli]:
    with RemindersCli.for_test(reminders_env, tmp_path) as cli:
        yield cli


def waiting_on(url: str, fragment: str, child: Child) -> list[int]:
    """Backends of this database waiting for a lock while running a query containing fragment."""
    if not child.alive():
        pytest.fail(f"the job ended early:\n{child.finished().describe()}")
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s",
            (f"%{fragment}%",),
        ).fetchall()
    return [pid for (pid,) in rows]


def test_one_backend_holds_the_lock_from_acquire_to_release_on_the_launch_path(
    launcher, db, db_url
):
    as_of = today()
    seed_assignments(db, 500, 0.4, as_of)
    expected = expected_due_set(db, as_of)

    select_gate = psycopg.connect(db_url)
    dispatch_gate = psycopg.connect(db_url)
    try:
        select_gate.execute("LOCK TABLE assignments IN ACCESS EXCLUSIVE MODE")
        dispatch_gate.execute("LOCK TABLE notifications IN SHARE MODE")
        child = launcher.start_command([sys.executable, "-c", LAUNCH, as_of.isoformat()])

        # 1. acquire_run_lock is done; select_due_assignments waits.
        at_select = wait_for_run_holding_lock(db_url, child)
        wait_for(
            lambda: waiting_on(db_url, "FROM assignments", child),
            timeout=60,
            what="select_due_assignments to wait on assignments",
        )
        assert lock_holder(db_url) == at_select

        # 2. select is done; dispatch_reminders waits on its first insert.
        select_gate.rollback()
        wait_for(
            lambda: waiting_on(db_url, "INSERT INTO notifications", child),
            timeout=60,
            what="dispatch_reminders to wait on notifications",
        )
        at_dispatch = lock_holder(db_url)
        assert at_dispatch == at_select, "the lock changed sessions between select and dispatch"

        # 3. dispatch and release_run_lock run to the end.
        dispatch_gate.rollback()
        done = child.wait()
    finally:
        select_gate.close()
        dispatch_gate.close()

    assert done.returncode == 0, done.describe()
    report = json.loads(done.stdout)
    assert report["success"], done.describe()
    run_id, pid = report["run_id"], at_select["pid"]
    assert at_select["application_name"] == f"reminders-run:{run_id}"

    acquired = report["outputs"]["acquire_run_lock.acquired"]
    assert acquired["lock_backend_pid"] == pid
    [row] = run_rows(db)
    assert row["dagster_run_id"] == run_id and row["status"] == "success"
    assert row["lock_backend_pid"] == pid
    assert report["outputs"]["release_run_lock.result"]["status"] == "success"
    # Every op ran in the launching process: the in-process executor.
    assert set(report["step_pids"]) == {
        "acquire_run_lock",
        "select_due_assignments",
        "dispatch_reminders",
        "release_run_lock",
    }
    assert set(report["step_pids"].values()) == {child.pid}

    # Released at the end, and the lock session closed with the run.
    assert lock_holder(db_url) is None
    with psycopg.connect(db_url, autocommit=True) as conn:
        alive = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        assert alive.fetchone()[0] == 0
    assert_notifications_are_exactly(db, expected)
