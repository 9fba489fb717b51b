"""Re-executing a failed run from the failed op, through Dagster's real launch path."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable

from reminders_pipeline.db.lock_holder import application_name_for
from reminders_pipeline.db.lock_keys import LOCK_KEY
from reminders_pipeline.orchestration.definitions import resolved_reminders_job
from tests.helpers.data import add_assignment, add_mentor, notifications, runs
from tests.helpers.locks import lock_free

AS_OF = date(2026, 11, 20)


def launch(instance: DagsterInstance, **kwargs):
    return execute_job(
        reconstructable(resolved_reminders_job),
        instance=instance,
        tags={"dagster/partition": AS_OF.isoformat()},
        **kwargs,
    )


def break_dispatch(db, broken: bool) -> None:
    """Make dispatch fail (its table is missing) or work again."""
    rename = (
        "ALTER TABLE notifications RENAME TO notifications_away"
        if broken
        else "ALTER TABLE notifications_away RENAME TO notifications"
    )
    with db.connection() as conn:
        conn.execute(rename)


def test_reexecution_from_the_failed_op_takes_the_lock_and_finishes_the_run(
    db, db_url, reminders_env
):
    mentor = add_mentor(db)
    due = add_assignment(db, mentor, AS_OF - timedelta(days=12))
    add_assignment(db, mentor, AS_OF - timedelta(days=3))
    with DagsterInstance.get() as instance:
        break_dispatch(db, True)
        first = launch(instance)
        break_dispatch(db, False)
        assert not first.success
        assert lock_free(db_url)

        again = launch(
            instance,
            reexecution_options=ReexecutionOptions.from_failure(first.run_id, instance),
        )

        assert again.success
        executed = {e.step_key for e in again.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert "acquire_run_lock" not in executed and "dispatch_reminders" in executed
    assert [n[0] for n in notifications(db)] == [due]
    assert [(r["dagster_run_id"], r["status"]) for r in runs(db)] == [
        (first.run_id, "failed"),
        (again.run_id, "success"),
    ]
    assert lock_free(db_url)


def test_reexecution_while_another_run_holds_the_lock_is_skipped(db, db_url, reminders_env):
    mentor = add_mentor(db)
    add_assignment(db, mentor, AS_OF - timedelta(days=12))
    with DagsterInstance.get() as instance:
        break_dispatch(db, True)
        first = launch(instance)
        break_dispatch(db, False)
        with psycopg.connect(
            db_url, autocommit=True, application_name=application_name_for("holder")
        ) as other:
            other.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)
            again = launch(
                instance,
                reexecution_options=ReexecutionOptions.from_failure(first.run_id, instance),
            )
        assert again.success
        tags = instance.get_run_by_id(again.run_id).tags
        assert tags.get("reminders/outcome") == "skipped"
    assert notifications(db) == []
    statuses = [(r["dagster_run_id"], r["status"]) for r in runs(db)]
    assert statuses == [(first.run_id, "failed"), (again.run_id, "skipped")]
