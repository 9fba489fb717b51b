"""The delivery job in Dagster: its own job (no queue tag, never the lock), launched after
a successful run and by the retry schedule; the sensors that watch it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
)

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_keys import LOCK_KEY
from reminders_pipeline.orchestration import sensors
from reminders_pipeline.orchestration.definitions import defs
from reminders_pipeline.orchestration.jobs import SINGLETON_TAG, delivery_job
from reminders_pipeline.orchestration.schedules import delivery_retry_schedule
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_runs import (
    after_run_sensor,
    evaluate_sensor,
    failure_sensor_ticks,
    job_run,
)
from tests.helpers.delivery_servers import SECRET, ReminderReceiver
from tests.helpers.outbox import due_reminders, make_deliverer


def test_delivery_job_has_no_queue_tag_and_a_numeric_max_runtime() -> None:
    job = defs.get_job_def(delivery_job.name)
    assert SINGLETON_TAG not in job.tags
    assert int(job.tags["dagster/max_runtime"]) > 0
    # Nothing of the run lock: no ReminderRunResource.
    assert "reminders" not in job.required_resource_keys


def test_delivery_job_sends_while_a_run_holds_the_lock_and_records_counts_per_channel(
    db: Database, reminders_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    due_reminders(db, 3, channels=["webhook", "email"])
    make_deliverer(db, {}).expand()
    with ReminderReceiver() as receiver, db.connection(autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)  # a daily run in progress
        monkeypatch.setenv("REMINDERS_WEBHOOK_URL", receiver.url())
        monkeypatch.setenv("REMINDERS_WEBHOOK_SECRET", SECRET)
        result = defs.get_job_def(delivery_job.name).execute_in_process(raise_on_error=False)
    # Email is not configured: the webhooks went, the run fails naming the email channel.
    assert not result.success
    assert len(receiver.accepted) == 3
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error.message
    assert "3 email deliveries are waiting: the email channel is not configured" in error
    metadata = failure.event_specific_data.user_failure_data.metadata
    assert metadata["sent"].value == 3
    assert metadata["per channel"].value == {
        "webhook": {"sent": 3, "retry": 0, "dead": 0, "cancelled": 0}
    }


def test_a_successful_reminders_run_launches_the_delivery_job(instance: DagsterInstance) -> None:
    # As release_run_lock tags a run that created reminders.
    tags = {"reminders/outcome": "success", "reminders/created": "3"}
    run_id = job_run(instance, DagsterRunStatus.SUCCESS, **tags)
    request = after_run_sensor(instance, run_id)
    assert isinstance(request, RunRequest) and request.run_key == f"after-{run_id}"


def test_failure_sensor_covers_the_delivery_job(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    messages: list[str | None] = []
    cursor = failure_sensor_ticks(instance, resources, None)
    failed = job_run(instance, DagsterRunStatus.FAILURE, job_name=delivery_job.name)
    failure_sensor_ticks(instance, resources, cursor, messages=messages)
    assert messages[0] is not None and messages[0].startswith(f"alerted: run {failed} ")
    [alert] = [r.body for r in webhook.received if r.body["kind"] == "run_failed"]
    assert alert["facts"]["job"] == delivery_job.name


def _retry_tick(instance: DagsterInstance, resources: dict) -> RunRequest | SkipReason:
    with build_schedule_context(instance=instance, resources=resources) as context:
        return delivery_retry_schedule(context)


def test_retry_schedule_launches_only_while_deliveries_are_due(
    db: Database, instance: DagsterInstance, resources: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMINDERS_WEBHOOK_URL", "http://127.0.0.1:9/reminders")
    nothing = SkipReason("no delivery is due, no reminder waits to be expanded")
    assert _retry_tick(instance, resources) == nothing
    due_reminders(db, 1, channels=["webhook"])
    make_deliverer(db, {}).expand()
    assert isinstance(_retry_tick(instance, resources), RunRequest)
    running = job_run(instance, DagsterRunStatus.STARTED, job_name=delivery_job.name)
    skip = _retry_tick(instance, resources)
    assert isinstance(skip, SkipReason) and running in (skip.skip_message or "")


def test_retry_schedule_launches_for_reminders_not_yet_expanded(
    db: Database, instance: DagsterInstance, resources: dict
) -> None:
    # As after a failed drain: the reminders exist, no delivery was made for them yet.
    due_reminders(db, 1, channels=["email"])
    assert isinstance(_retry_tick(instance, resources), RunRequest)
    make_deliverer(db, {}).expand()
    # Expanded, but the email channel has no sender: no job that can only fail (the
    # health sensor's pending-age alert covers the backlog).
    nothing = SkipReason("no delivery is due, no reminder waits to be expanded")
    assert _retry_tick(instance, resources) == nothing


def test_long_run_sensor_covers_the_delivery_job(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    started = datetime.now(UTC) - timedelta(hours=2)
    run_id = job_run(
        instance, DagsterRunStatus.STARTED, started_at=started, job_name="delivery_job"
    )
    evaluate_sensor(sensors.long_running_reminders_sensor, instance, resources, None)
    [alert] = [r.body for r in webhook.received if r.body["kind"] == "long_run"]
    assert alert["facts"]["run id"] == run_id
    assert alert["facts"]["seen in"] == "Dagster (delivery_job)"
    assert "holds the run lock" not in alert["facts"]


def test_delivery_sensor_alerts_on_new_dead_deliveries_and_an_old_pending_one(
    db: Database, instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    due_reminders(db, 2, channels=["webhook"])
    make_deliverer(db, {}).expand()
    sensor = sensors.delivery_health_sensor
    quiet, cursor = evaluate_sensor(sensor, instance, resources, None)
    assert quiet == "no new dead delivery, no old pending one"
    with db.connection() as conn:
        conn.execute(
            "UPDATE deliveries SET state = 'dead', last_error = 'webhook answered HTTP 410',"
            " finished_at = now() WHERE id = (SELECT min(id) FROM deliveries)"
        )
        conn.execute("UPDATE deliveries SET created_at = now() - interval '7 hours'")
    message, cursor = evaluate_sensor(sensor, instance, resources, cursor)
    assert message == "alerted: 1 dead deliveries; oldest pending delivery 420 min"
    again, cursor = evaluate_sensor(sensor, instance, resources, cursor)
    assert again == "already alerted: oldest pending delivery 420 min"
    kinds = [r.body["kind"] for r in webhook.received]
    assert kinds == ["dead_deliveries", "pending_deliveries"]
    assert "HTTP 410" in webhook.received[0].body["text"]


def test_delivery_sensor_alerts_on_deliveries_dying_out_of_id_order(
    db: Database, instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    due_reminders(db, 2, channels=["webhook"])
    make_deliverer(db, {}).expand()
    sensor = sensors.delivery_health_sensor
    _, cursor = evaluate_sensor(sensor, instance, resources, None)
    kill = (
        "UPDATE deliveries SET state = 'dead', last_error = %s, finished_at = clock_timestamp()"
        " WHERE id = (SELECT {} FROM deliveries)"
    )
    with db.connection() as conn:  # the higher id dies first (a permanent 4xx)...
        conn.execute(kill.format("max(id)"), ("webhook answered HTTP 410",))
    first, cursor = evaluate_sensor(sensor, instance, resources, cursor)
    with db.connection() as conn:  # ...the lower one after its last retry
        conn.execute(kill.format("min(id)"), ("webhook answered HTTP 503",))
    second, cursor = evaluate_sensor(sensor, instance, resources, cursor)
    assert (first, second) == ("alerted: 1 dead deliveries", "alerted: 1 dead deliveries")
    assert ["HTTP 503" in r.body["text"] for r in webhook.received] == [False, True]
