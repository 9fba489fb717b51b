"""What the sensors, alerts and the CLI tell an operator is true of skipped, failed and
CLI-launched runs (each of these said something untrue before)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
)

from reminders_pipeline.alerts.messages import duration, elapsed_for, long_run_alert
from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.db.lock_keys import LOCK_KEY
from reminders_pipeline.orchestration import sensors
from reminders_pipeline.orchestration.dagster_home import dagster_instance
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.launch import run_reminders_job
from reminders_pipeline.orchestration.ops import CREATED_TAG
from reminders_pipeline.orchestration.resources import ReminderRunResource
from reminders_pipeline.orchestration.sensors.long_run import check_long_runs
from tests.helpers.admin_api import create_token
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_runs import (
    after_run_sensor,
    evaluate_sensor,
    failure_sensor_ticks,
    job_run,
)
from tests.helpers.data import add_assignment, add_mentor
from tests.helpers.ports import free_port
from tests.helpers.runs import (
    expected_due_set,
    seed_assignments,
    today,
    wait_for,
)
from tests.helpers.settings import override

D1 = date(2026, 3, 1)


def alerts_of(webhook: WebhookServer, kind: str) -> list[dict]:
    return [r.body for r in webhook.received if r.body["kind"] == kind]


# ------------------------------------------------------------------ stale lock grace


def test_stale_lock_grace_counts_from_when_the_lock_was_taken_not_the_session_start(
    instance: DagsterInstance,
    db_url: str,
    resources: dict,
    webhook: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grace = 2
    override(monkeypatch, "STALE_LOCK_GRACE_S", grace)
    with psycopg.connect(db_url, autocommit=True, application_name="psql") as session:
        time.sleep(grace + 1)  # a session open longer than the grace ...
        session.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)  # ... takes the lock now
        pid = session.info.backend_pid
        with psycopg.connect(db_url, autocommit=True) as observer:
            age = observer.execute(
                "SELECT extract(epoch FROM now() - backend_start) FROM pg_stat_activity"
                " WHERE pid = %s",
                (pid,),
            ).fetchone()[0]
        assert age > grace  # the session itself is older than the grace
        young, _ = evaluate_sensor(sensors.stale_lock_sensor, instance, resources, None)
        assert alerts_of(webhook, "stale_lock") == [], young

        time.sleep(grace + 0.5)  # now the lock itself is older than the grace
        evaluate_sensor(sensors.stale_lock_sensor, instance, resources, None)
    [alert] = alerts_of(webhook, "stale_lock")
    assert alert["facts"]["pid"] == str(pid)
    assert "not a reminders run at all" in alert["facts"]["why stale"]


# ------------------------------------------------------------------ runs: a failed run's due


def test_runs_shows_the_selections_due_count_for_a_failed_run(reminders_cli, db, db_url):
    as_of = today()
    seed_assignments(db, 200, 0.5, as_of)
    due = len(expected_due_set(db, as_of))
    assert due > 0
    with psycopg.connect(db_url, autocommit=True) as conn:  # dispatch fails on its first INSERT
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'disk full (injected)'; END$$;"
            " CREATE TRIGGER refuse BEFORE INSERT ON notifications"
            " FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    ran = reminders_cli("run", "--as-of", as_of.isoformat())
    assert ran.returncode == 1, ran.describe()
    assert ran.stdout.startswith("failed") and f": {due} due, 0 reminders created" in ran.stdout

    listed = reminders_cli("runs", "--json").json()
    assert (listed[0]["status"], listed[0]["selected"], listed[0]["created"]) == ("failed", due, 0)
    text = reminders_cli("runs").stdout.splitlines()[0]
    assert f"due {due}  created 0" in text, text


# ------------------------------------------------------------------ delivery after a run


def test_delivery_follows_only_a_run_that_created_reminders(reminders_env, db, db_url):
    mentor = add_mentor(db)
    add_assignment(db, mentor, D1 - timedelta(days=10))  # one reminder due on D1
    created = run_reminders_job(db_url, D1)
    again = run_reminders_job(db_url, D1)  # nothing new: the reminder exists
    with RunLock(db_url, "another-run") as lock:  # a run in progress elsewhere
        assert lock.try_acquire()
        skipped = run_reminders_job(db_url, D1)
    assert (created.status, created.created) == ("success", 1)
    assert (again.status, again.created) == ("success", 0)
    assert skipped.status == "skipped"

    with dagster_instance() as instance:
        for summary in (created, again, skipped):  # all three are Dagster successes
            run = instance.get_run_by_id(summary.dagster_run_id)
            assert run.status == DagsterRunStatus.SUCCESS
        assert instance.get_run_by_id(created.dagster_run_id).tags[CREATED_TAG] == "1"
        launched = after_run_sensor(instance, created.dagster_run_id)
        after_nothing = after_run_sensor(instance, again.dagster_run_id)
        after_skip = after_run_sensor(instance, skipped.dagster_run_id)
    assert isinstance(launched, RunRequest)
    assert isinstance(after_nothing, SkipReason)
    assert "created no reminders" in after_nothing.skip_message
    assert isinstance(after_skip, SkipReason)
    assert "was skipped" in after_skip.skip_message


# ------------------------------------------------------------------ long runs


def test_long_run_texts_match_a_threshold_in_seconds(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    threshold = timedelta(seconds=90)
    assert duration(threshold) == "1 min 30 s"  # was "2 min": rounded up
    assert elapsed_for(timedelta(seconds=100), threshold) == "1 min 40 s"  # was "1 min"
    assert elapsed_for(timedelta(minutes=45, seconds=20), timedelta(minutes=30)) == "45 min"

    started = datetime.now(UTC) - timedelta(seconds=100)
    run_id = job_run(instance, DagsterRunStatus.STARTED, started_at=started)
    alerts = resources["alerts"]
    first = check_long_runs(instance, resources["reminders_db"], alerts, None, threshold)
    again = check_long_runs(instance, resources["reminders_db"], alerts, first.cursor, threshold)
    [alert] = alerts_of(webhook, "long_run")
    assert alert["text"].startswith("A reminders run has been in progress for 1 min 4"), alert
    assert alert["facts"]["threshold"] == "1 min 30 s"
    assert alert["facts"]["elapsed"].startswith("1 min 4")  # 100 s and a little
    assert any(f"run {run_id} in progress for 1 min 4" in line for line in again.still)
    quiet = long_run_alert(
        run_id="r",
        started_at=None,
        elapsed=timedelta(seconds=30),
        threshold=threshold,
        source="x",
        holds_lock=None,
    )
    assert quiet.facts["elapsed"] == "30 s"


def test_long_run_sensor_description_with_long_run_s(monkeypatch: pytest.MonkeyPatch) -> None:
    override(monkeypatch, "LONG_RUN_S", 90)
    from reminders_pipeline.orchestration.sensors.long_run import long_run_threshold

    assert duration(long_run_threshold()) == "1 min 30 s"


# ------------------------------------------------------------------ no channel, next step


def test_a_run_with_no_delivery_channel_configured_says_so(reminders_cli, db, monkeypatch):
    for name in ("REMINDERS_SMTP_URL", "REMINDERS_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    as_of = today()
    seed_assignments(db, 20, 0.5, as_of)
    bare = {"REMINDERS_SMTP_URL": "", "REMINDERS_WEBHOOK_URL": ""}
    ran = reminders_cli("run", "--as-of", as_of.isoformat(), env=bare)
    assert ran.returncode == 0, ran.describe()
    assert "note: no delivery channel is configured" in ran.stdout
    assert "REMINDERS_SMTP_URL and REMINDERS_EMAIL_FROM" in ran.stdout
    assert "REMINDERS_WEBHOOK_URL and REMINDERS_WEBHOOK_SECRET" in ran.stdout
    delivered = reminders_cli("deliver", env=bare)
    assert "no delivery channel is configured" in delivered.stderr

    configured = {"REMINDERS_WEBHOOK_URL": "http://127.0.0.1:9/", "REMINDERS_WEBHOOK_SECRET": "s"}
    seed_assignments(db, 20, 0.5, as_of)
    ran = reminders_cli("run", "--as-of", as_of.isoformat(), env=configured)
    assert "no delivery channel" not in ran.stdout, ran.describe()


def test_failure_alert_names_the_next_step(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    cursor = failure_sensor_ticks(instance, resources, None)
    result = reminders_job.execute_in_process(
        instance=instance,
        partition_key="2026-03-30",
        raise_on_error=False,
        resources={"reminders": ReminderRunResource(database_url="postgresql://x@127.0.0.1:1/x")},
    )
    assert not result.success
    failure_sensor_ticks(instance, resources, cursor, ticks=2)
    [alert] = alerts_of(webhook, "run_failed")
    step = alert["facts"]["next step"]
    assert "reminders backfill --from 2026-03-30 --to 2026-03-30" in step
    assert "Next: fix the cause" in alert["text"]


# ------------------------------------------------------------------ reminders missing


def test_missing_prints_its_summary_and_list_on_lines_of_their_own(reminders_cli):
    first = today() - timedelta(days=2)
    listed = reminders_cli("missing", "--since", first.isoformat())
    assert listed.returncode == 0, listed.describe()
    days = [(first + timedelta(days=n)).isoformat() for n in range(3)]
    assert listed.stdout == ",".join(days) + "\n"
    assert listed.stderr.endswith(f"3 day(s) from {first} to {today()} not done\n")
    bad = reminders_cli("missing", "--since", "x")
    assert bad.returncode == 1
    assert "--since must be a date as YYYY-MM-DD, got 'x'" in bad.stderr
    helped = reminders_cli("missing", "--help")
    assert "reminders backfill --from DAY --missing" in helped.stdout


# ------------------------------------------------------------------ admin serve


def test_admin_serve_without_an_active_token_says_so(reminders_cli):
    port = free_port()
    child = reminders_cli.start("admin", "serve", "--host", "127.0.0.1", "--port", str(port))
    try:
        warned = wait_for(
            lambda: "warning: no active token" in child.errors() or not child.alive(),
            timeout=60,
            what="admin serve to start",
        )
        assert warned and child.alive(), child.errors()
        assert "reminders admin create-token NAME" in child.errors()
    finally:
        child.close()


def test_list_tokens_json_writes_iso_8601_times_as_every_json_listing_does(reminders_cli):
    create_token(reminders_cli, "ops-bot", "read")
    revoked = reminders_cli("admin", "revoke-token", "ops-bot", timeout=60)
    assert revoked.returncode == 0, revoked.describe()
    listed = reminders_cli("admin", "list-tokens", "--json", timeout=60).json()
    (token,) = listed
    assert token["name"] == "ops-bot" and token["scopes"] == ["read"]
    for field in ("created_at", "revoked_at"):
        assert datetime.fromisoformat(token[field]).tzinfo is not None, token
        assert "T" in token[field], token  # isoformat, as `reminders runs --json` writes
    assert token["last_used_at"] is None


def test_the_failed_runs_page_names_the_next_step(instance: DagsterInstance) -> None:
    result = reminders_job.execute_in_process(
        instance=instance,
        partition_key="2026-03-30",
        raise_on_error=False,
        resources={"reminders": ReminderRunResource(database_url="postgresql://x@127.0.0.1:1/x")},
    )
    assert not result.success
    logged = [record.user_message for record in instance.all_logs(result.run_id)]
    assert any(
        m.startswith("Next: fix the cause") and "reminders backfill --from 2026-03-30" in m
        for m in logged
    ), logged
