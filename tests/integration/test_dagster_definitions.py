"""The code location loads, as `dagster definitions validate` (what CI runs) sees it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import DefaultScheduleStatus, DefaultSensorStatus

from reminders_pipeline.orchestration.definitions import defs

REPO = Path(__file__).resolve().parents[2]


def test_dagster_definitions_validate(reminders_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate"]
        + ["-w", str(REPO / "workspace.yaml")],
        env={**os.environ, **reminders_env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_every_job_schedule_and_sensor_resolves() -> None:
    repo = defs.get_repository_def()
    assert [job.name for job in repo.get_all_jobs()] == ["reminders_job"]
    schedule = repo.get_schedule_def("daily_reminders_schedule")
    assert schedule.default_status == DefaultScheduleStatus.STOPPED  # operators turn it on
    assert schedule.execution_timezone == "Europe/Oslo"
    assert schedule.cron_schedule == "0 6 * * *"
    sensor_names = {s.name for s in repo.sensor_defs}
    assert sensor_names == {
        "long_running_reminders_sensor",
        "reminders_run_failure_sensor",
        "repeated_skips_sensor",
        "stale_lock_sensor",
        "zombie_run_sensor",
    }
    for sensor in repo.sensor_defs:
        assert sensor.default_status == DefaultSensorStatus.RUNNING
