"""The reminders job's sensors, one module each; its docstring says what it watches.

They observe and alert, except two: zombie reports runs whose worker is gone as
failed, so the one-at-a-time queue moves on, and after_run launches delivery_job.
Wording and sinks are reminders_pipeline.alerts (plain Python); the shared
decorator -> check -> cursor -> summary shape is common.alerting_sensor.
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
