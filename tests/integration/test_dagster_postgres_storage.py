"""The job through Dagster's launch path against an instance on dagster-postgres storage,
configured by the shipped dagster.postgres.yaml (and its psycopg2 scheme)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable
from dagster._core.instance.ref import InstanceRef

from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.url import with_database
from reminders_pipeline.orchestration.definitions import resolved_reminders_job
from tests.helpers.dagster_storage import drop_database, postgres_storage_home
from tests.helpers.data import D1, D2, D3, add_assignment, add_mentor, notifications, runs
from tests.helpers.locks import lock_free

REPO = Path(__file__).resolve().parents[2]
DAYS = [D1, D2, D3]


@pytest.fixture
def postgres_instance(
    pg_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reminders_env: dict
) -> Iterator[tuple[DagsterInstance, str]]:
    """A Dagster instance whose storage is a fresh database on the test server."""
    home = tmp_path / "dagster_pg_home"
    name, pg_env = postgres_storage_home(pg_server_url, "dagster_storage", home)
    for var, value in {
        **pg_env,
        "DAGSTER_HOME": str(home),
        "DAGSTER_COMPUTE_LOGS_DIR": str(tmp_path / "compute_logs"),
    }.items():
        monkeypatch.setenv(var, value)
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    try:
        yield instance, with_database(pg_server_url, name)
    finally:
        instance.dispose()
        drop_database(pg_server_url, name)


def launch(instance: DagsterInstance, day: date):  # noqa: ANN201 (ExecuteJobResult)
    return execute_job(
        reconstructable(resolved_reminders_job),
        instance=instance,
        tags={"dagster/partition": day.isoformat(), "reminders/trigger": "test"},
    )


def test_the_shipped_postgres_config_names_the_psycopg2_driver() -> None:
    config = yaml.safe_load((REPO / "dagster.postgres.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    shipped = yaml.safe_load((REPO / "dagster.yaml").read_text())
    for key in ("concurrency", "run_queue", "run_monitoring"):
        assert config[key] == shipped[key], f"{key} differs between the two instance configs"


def test_job_runs_on_postgres_storage_and_a_rerun_creates_nothing_new(
    postgres_instance: tuple[DagsterInstance, str], db: Database
) -> None:
    instance, storage_url = postgres_instance
    mentor = add_mentor(db)
    add_assignment(db, mentor, DAYS[0] - timedelta(days=10))
    add_assignment(db, mentor, DAYS[0] - timedelta(days=1), interval_days=1)

    first = [launch(instance, day) for day in DAYS]
    assert all(result.success for result in first)
    created = notifications(db)
    assert len(created) == 4  # one for the first assignment, three for the daily one

    again = [launch(instance, day) for day in DAYS]  # the same days once more
    assert all(result.success for result in again)
    assert notifications(db) == created, "a re-run created reminders"
    assert [r["created"] for r in runs(db)] == [2, 1, 1, 0, 0, 0]

    # Runs, tags and events live in Dagster's Postgres storage.
    for result in first + again:
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.tags["reminders/outcome"] == "success"
    with psycopg.connect(storage_url) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 6
        assert conn.execute("SELECT count(*) FROM event_logs").fetchone()[0] > 6


def test_a_skipped_run_shows_as_skipped_with_the_lock_holder(
    postgres_instance: tuple[DagsterInstance, str], db_url: str
) -> None:
    instance, _ = postgres_instance
    with RunLock(db_url, "holder-run-7") as lock:
        assert lock.try_acquire()
        result = launch(instance, DAYS[0])
        pid = lock.backend_pid
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags["reminders/outcome"] == "skipped"
    [output] = [
        e
        for e in result.all_events
        if e.is_successful_output and e.step_output_data.output_name == "skipped"
    ]
    metadata = output.step_output_data.metadata
    assert metadata["holder_pid"].value == pid
    assert metadata["holder_run_id"].value == "holder-run-7"


def test_reexecution_from_failure_on_a_worker_with_an_empty_disk(
    postgres_instance: tuple[DagsterInstance, str], db: Database, db_url: str, tmp_path: Path
) -> None:
    """The failed run's worker and the re-execution's worker share nothing but Postgres:
    the second has a fresh DAGSTER_HOME and compute-log dir, and the first's are wiped."""
    instance, _ = postgres_instance
    mentor = add_mentor(db)
    due = add_assignment(db, mentor, DAYS[0] - timedelta(days=12))
    with db.connection() as conn:  # dispatch fails: its table is missing
        conn.execute("ALTER TABLE notifications RENAME TO notifications_away")
    first = launch(instance, DAYS[0])
    with db.connection() as conn:
        conn.execute("ALTER TABLE notifications_away RENAME TO notifications")
    assert not first.success
    old_home = Path(instance.root_directory)
    for leftover in (old_home / "storage", tmp_path / "compute_logs"):
        shutil.rmtree(leftover, ignore_errors=True)

    new_home = tmp_path / "new_worker_home"
    new_home.mkdir()
    shutil.copy(old_home / "dagster.yaml", new_home / "dagster.yaml")
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(new_home))) as new_worker:
        again = execute_job(
            reconstructable(resolved_reminders_job),
            instance=new_worker,
            reexecution_options=ReexecutionOptions.from_failure(first.run_id, new_worker),
        )
        assert again.success, [e.message for e in again.all_events if e.is_failure]
        executed = {e.step_key for e in again.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert executed == {"dispatch_reminders", "release_run_lock"}
    assert [n[0] for n in notifications(db)] == [due]
    assert [r["status"] for r in runs(db)] == ["failed", "success"]
    assert not (new_home / "storage").exists(), sorted((new_home / "storage").rglob("*"))
    assert lock_free(db_url)
