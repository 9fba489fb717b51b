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
    # __ASSET_JOB is Dagster's hidden job for the asset; the external asset has no
    # compute, so it only ever materializes from reminders_job.
    assert [job.name for job in repo.get_all_jobs() if not job.name.startswith("__")] == [
        "delivery_job",
        "reminders_job",
    ]
    [asset] = repo.asset_graph.get_all_asset_keys()
    assert asset.to_user_string() == "reminders/daily_reminders"
    assert not repo.asset_graph.get(asset).is_executable
    schedule = repo.get_schedule_def("daily_reminders_schedule")
    assert schedule.default_status == DefaultScheduleStatus.STOPPED  # operators turn it on
    assert schedule.execution_timezone == "Europe/Oslo"
    assert schedule.cron_schedule == "0 6 * * *"
    retries = repo.get_schedule_def("delivery_retry_schedule")
    assert retries.default_status == DefaultScheduleStatus.STOPPED
    assert retries.cron_schedule == "*/10 * * * *"
    sensor_names = {s.name for s in repo.sensor_defs}
    assert sensor_names == {
        "delivery_after_run_sensor",
        "delivery_health_sensor",
        "long_running_reminders_sensor",
        "reminders_run_failure_sensor",
        "repeated_skips_sensor",
        "stale_lock_sensor",
        "zombie_run_sensor",
    }
    for sensor in repo.sensor_defs:
        assert sensor.default_status == DefaultSensorStatus.RUNNING


def test_the_code_location_refuses_to_load_in_production_without_the_database_url(
    reminders_env: dict[str, str], tmp_path: Path
) -> None:
    """REMINDERS_ENV=production and no REMINDERS_DATABASE_URL: the location fails to load,
    naming the variable, instead of serving runs from a private embedded database.
    (A Postgres-storage DAGSTER_HOME does the same: tests/unit/test_production_guard.py and
    the CLI test in test_cli_errors.py.)"""
    env = {**os.environ, **reminders_env, "REMINDERS_ENV": "production"}
    env.pop("REMINDERS_DATABASE_URL")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate"]
        + ["-w", str(REPO / "workspace.yaml")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "REMINDERS_DATABASE_URL is not set, and this is a production process" in output
    assert not (Path(reminders_env["REMINDERS_HOME"]) / "pgdata").exists()
