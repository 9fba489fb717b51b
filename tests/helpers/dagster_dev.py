"""A real `dagster dev` (webserver, daemon, code server) for acceptance tests.

The `dagster_dev` fixture (tests/acceptance/conftest.py) starts one on a free port
with the test's DAGSTER_HOME holding the instance config of the `dagster_yaml`
fixture, so the run queue, run monitoring and sensors under test are the real ones.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef
from dagster_graphql import DagsterGraphQLClient

from reminders_pipeline.orchestration.jobs import reminders_job
from tests.helpers.ports import free_port
from tests.helpers.runs import wait_for

REPO = Path(__file__).resolve().parents[2]
DAGSTER_BIN = Path(sys.executable).with_name("dagster")
STARTUP_TIMEOUT_S = 120
RUN_TIMEOUT_S = 90
# Seconds between sensor evaluations in the daemon (REMINDERS_SENSOR_INTERVAL_S).
SENSOR_INTERVAL_S = 5
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@dataclass
class Dagster:
    """A running `dagster dev` and ways to look at it."""

    process: subprocess.Popen
    port: int
    home: Path
    log_path: Path
    instance: DagsterInstance
    client: DagsterGraphQLClient

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def submit(self, partition: date) -> str:
        return self.client.submit_job_execution(
            reminders_job.name, tags={"dagster/partition": partition.isoformat()}
        )

    def status(self, run_id: str) -> DagsterRunStatus:
        run = self.instance.get_run_by_id(run_id)
        assert run is not None, f"run {run_id} is unknown"
        return run.status

    def wait_status(self, run_id: str, *statuses: DagsterRunStatus) -> DagsterRunStatus:
        def probe() -> DagsterRunStatus | None:
            status = self.status(run_id)
            if status in statuses:
                return status
            if status in TERMINAL:
                pytest.fail(f"run {run_id} ended {status.value}, expected {statuses}")
            return None

        return wait_for(probe, timeout=RUN_TIMEOUT_S, what=f"run {run_id} to be {statuses}")

    def window(self, run_id: str) -> tuple[float, float]:
        record = self.instance.get_run_record_by_id(run_id)
        assert record and record.start_time and record.end_time
        return record.start_time, record.end_time

    def worker_pid(self, run_id: str) -> int:
        """The run worker's pid, from Dagster's own 'Started process for run' event."""
        for entry in self.instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
            if entry.message.startswith("Started process for run"):
                return int(entry.dagster_event.engine_event_data.metadata["pid"].value)
        pytest.fail(f"no run worker pid for run {run_id}")


@contextlib.contextmanager
def running_dagster_dev(
    reminders_env: dict[str, str], workdir: Path, alert_webhook_url: str, dagster_yaml: Path
) -> Iterator[Dagster]:
    """`dagster dev` on a free port, serving the reminders code location until the block ends;
    fails the test when it does not stop on Ctrl-C within 30 s."""
    home = dagster_yaml.parent
    port = free_port()
    env = {
        **os.environ,
        **reminders_env,
        "PYTHONUNBUFFERED": "1",
        "REMINDERS_ALERT_WEBHOOK_URL": alert_webhook_url,
        "REMINDERS_DAGSTER_UI_URL": f"http://127.0.0.1:{port}",
        "REMINDERS_SENSOR_INTERVAL_S": str(SENSOR_INTERVAL_S),
    }
    # Create the instance's SQLite storage before `dagster dev` starts: its webserver,
    # daemon and code server would otherwise race to create the schema on a fresh
    # home (alembic "more than one head"), which a loaded machine makes likely.
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    instance.get_runs_count()
    _ = instance.event_log_storage, instance.schedule_storage
    log_path = workdir / "dagster-dev.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(DAGSTER_BIN), "dev", "-w", str(REPO / "workspace.yaml")]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as one at the end
        )
    dagster = Dagster(
        process, port, home, log_path, instance, DagsterGraphQLClient("127.0.0.1", port_number=port)
    )
    try:
        wait_for(
            lambda: _code_location_loaded(dagster),
            timeout=STARTUP_TIMEOUT_S,
            what="dagster dev to serve the reminders code location",
        )
        yield dagster
    finally:
        clean = _shut_down(process)
        instance.dispose()
    assert clean, f"dagster dev did not stop on Ctrl-C within 30 s:\n{dagster.log_tail()}"


def _code_location_loaded(dagster: Dagster) -> bool:
    if dagster.process.poll() is not None:
        pytest.fail(f"dagster dev exited {dagster.process.returncode}:\n{dagster.log_tail()}")
    try:
        result = dagster.client._execute(
            "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
        )
    except Exception:
        return False
    return bool(result.get("repositoriesOrError", {}).get("nodes"))


def _shut_down(process: subprocess.Popen) -> bool:
    """Ctrl-C first (dagster dev stops its webserver, daemon and code server), then SIGKILL
    whatever is left of the process group. True when Ctrl-C was enough."""
    clean = False
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
            clean = True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything left in the group
    process.wait(timeout=10)
    return clean
