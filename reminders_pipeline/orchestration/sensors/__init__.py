"""Alerting sensors of the reminders job, one module each. They only observe and alert.

- long_run: a run in progress longer than REMINDERS_LONG_RUN_MINUTES (or _S), once per run;
- failure: a failed run, with its error and a link to the run in the UI;
- skips: REMINDERS_SKIP_ALERT_AFTER skipped runs in a row, once per streak;
- stale_lock: the run lock held by a session whose run is not in progress, once
  per session; never terminated automatically;
- after_run: not an alert: launches delivery_job after each successful reminders run;
- deliveries: dead deliveries, or a pending delivery older than
  REMINDERS_DELIVERY_MAX_PENDING_AGE_S;
- zombie: the one that acts: runs whose worker is gone are reported failed, so
  the one-at-a-time queue moves on, and alerted once.

Messages and delivery live in reminders_pipeline.alerts (plain Python); the
shared decorator -> check -> cursor -> summary shape is common.alerting_sensor.
"""

from reminders_pipeline.orchestration.sensors.after_run import delivery_after_run_sensor
from reminders_pipeline.orchestration.sensors.deliveries import delivery_health_sensor
from reminders_pipeline.orchestration.sensors.failure import reminders_run_failure_sensor
from reminders_pipeline.orchestration.sensors.long_run import long_running_reminders_sensor
from reminders_pipeline.orchestration.sensors.skips import repeated_skips_sensor
from reminders_pipeline.orchestration.sensors.stale_lock import stale_lock_sensor
from reminders_pipeline.orchestration.sensors.zombie import zombie_run_sensor

all_sensors = [
    delivery_after_run_sensor,
    delivery_health_sensor,
    long_running_reminders_sensor,
    reminders_run_failure_sensor,
    repeated_skips_sensor,
    stale_lock_sensor,
    zombie_run_sensor,
]
