"""stale_lock_sensor: the run lock held by a session whose run is not in progress.

Once per session. The session is never terminated automatically.
"""

from datetime import timedelta
from typing import Any

from dagster import DagsterInstance, SensorEvaluationContext

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import now_utc, stale_lock_alert
from reminders_pipeline.core.sensor_reads import SensorReads
from reminders_pipeline.db.lock_holder import (
    APPLICATION_PREFIX,
    LockHolder,
    is_one_call_session,
)
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.sensors.common import (
    Checked,
    alert_destinations,
    alerting_sensor,
    attempt,
)


def stale_reason(instance: DagsterInstance, reads: SensorReads, holder: LockHolder) -> str | None:
    """Why the holder's run is not in progress, or None when it is (or may be)."""
    # The grace counts from the holder's last state change, not its session start: a
    # long-open session that has just taken the lock is as young as a starting run.
    # pg_locks keeps no acquisition time; an idle holder took it at or before then.
    taken_by = holder.state_change or holder.since
    if taken_by is not None:
        age = now_utc() - taken_by
        if age < timedelta(seconds=settings.STALE_LOCK_GRACE_S.get()):
            return None
    if holder.run_id is not None:
        run = instance.get_run_by_id(holder.run_id)
        if run is not None:
            return f"its Dagster run is {run.status.value}" if run.is_finished else None
    # Unknown to this Dagster instance: a live run elsewhere (the CLI with another
    # DAGSTER_HOME) still has its 'running' row written by this very session.
    rows = reads.runs_of(holder.run_id) if holder.run_id else []
    if any(r["status"] == "running" for r in rows):
        return None
    if holder.run_id is not None:
        state = f"its run is {rows[0]['status']} in reminder_runs" if rows else "no run record"
        return f"run {holder.run_id} is unknown to Dagster ({state})"
    if (holder.application_name or "").startswith(APPLICATION_PREFIX):
        if any(r["lock_backend_pid"] == holder.pid for r in reads.running_started_before(0)):
            return None
        return "a reminders session without a run id and without a 'running' row"
    if is_one_call_session(holder.application_name) and holder.state != "idle":
        # reminders_run_day(): its 'running' row shows only at commit, and its lock ends
        # with its transaction, so only a transaction left open is stale. A state this
        # login may not see (another login's session) may be a call at work.
        if (holder.state or "").startswith("idle in transaction"):
            return (
                "a one-call run (reminders_run_day()) whose transaction is left open,"
                " idle in transaction"
            )
        return None
    return f"not a reminders run at all (application_name {holder.application_name!r})"


def check_stale_lock(
    instance: DagsterInstance,
    reads: SensorReads,
    alerts: AlertResource,
    cursor: str | None,
    logger: Any = None,
) -> Checked:
    problems: list[str] = []
    holder = attempt("reading the lock holder", reads.lock_holder, problems)
    if holder is None:
        return Checked([], problems, ("" if not problems else cursor))
    key = f"{holder.pid}@{holder.since.isoformat() if holder.since else '?'}"
    if key == cursor:
        # The very session alerted on still holds the lock: it is still stale.
        return Checked([], problems, cursor, [f"stale lock held by {holder.describe()}"])
    why = attempt("judging the lock holder", lambda: stale_reason(instance, reads, holder), [])
    if why is None:
        return Checked([], problems, cursor)
    # The run may have just let go; alert only if the very same session still holds it.
    again = attempt("reading the lock holder", reads.lock_holder, problems)
    if again is None or (again.pid, again.since) != (holder.pid, holder.since):
        return Checked([], problems, cursor)
    link = alerts.run_url(holder.run_id) if holder.run_id else None
    alerts.send(stale_lock_alert(holder=holder, why=why, link=link), logger=logger)
    return Checked([f"stale lock held by pid {holder.pid} ({why})"], problems, key)


@alerting_sensor(
    description=(
        "Watches the reminders run lock (pg_locks): alerts once per session holding it whose"
        " run is finished, failed or unknown to Dagster, or whose one-call run's transaction"
        " is left open, after a"
        f" {settings.STALE_LOCK_GRACE_S.get()} s grace (REMINDERS_STALE_LOCK_GRACE_S)."
        f" Never terminates the session. {alert_destinations()}"
    ),
)
def stale_lock_sensor(
    context: SensorEvaluationContext, reads: SensorReads, alerts: AlertResource
) -> Checked:
    checked = check_stale_lock(context.instance, reads, alerts, context.cursor, context.log)
    return checked.saying("the run lock is free or held by a run in progress")
