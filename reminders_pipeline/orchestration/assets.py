"""The day's reminders as a Dagster asset, so "done" means what Dagster means by it.

`reminders/daily_reminders` is an external asset (an AssetSpec: Dagster does not
compute it) partitioned like the job. The job's last op reports a materialization
of the run's day after recording 'success'; a skipped or failed run reports none.

Why an asset: the job's own Partitions page colours a day by the status of its
latest run, and a skipped run is a successful Dagster run (it did its job:
recorded the skip and stopped), so a day that was only ever skipped looks done
there. The asset's partitions count materializations, so its Missing days are
exactly the days whose reminders were never created. See docs/operations.md,
"Which days are done".
"""

from dagster import AssetSpec

from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.ops import DAILY_REMINDERS
from reminders_pipeline.orchestration.partitions import reminder_partitions

daily_reminders = AssetSpec(
    key=DAILY_REMINDERS,
    partitions_def=reminder_partitions,
    group_name="reminders",
    kinds={"postgres"},
    description=(
        f"One partition per as-of date: materialized by the {reminders_job.name} run that"
        " created that day's reminders (metadata: selected, created, already_existed,"
        " duration_s, reminder_runs_id). A day whose runs were all skipped or failed stays"
        " missing: backfill the job for those days."
    ),
    metadata={"table": "notifications", "execution log": "reminder_runs"},
)
