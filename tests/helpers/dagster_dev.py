"""Real Dagster processes for acceptance tests, started, watched and stopped in one place.

The `dagster_dev` fixture (tests/acceptance/conftest.py) runs one `dagster dev` on a free
port with the test's DAGSTER_HOME holding the instance config of the `dagster_yaml`
fixture, so the run queue, run monitoring and sensors under test are the real ones.
tests/acceptance/test_production_topology.py runs the code server, the daemon and the
webserver as separate `Service`s instead. Either way `serving()` starts them, waits until
the webserver serves the code location, and stops them whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
BIN = Path(sys.executable).parent
DAGSTER_BIN = BIN / "dagster"
LOCATION = "reminders_pipeline"  # the location_name of workspace.yaml and workspace.grpc.yaml
STARTUP_TIMEOUT_S = 120
RUN_TIMEOUT_S = 90
# Seconds between sensor evaluations in the daemon (REMINDERS_SENSOR_INTERVAL_S).
SENSOR_INTERVAL_S = 5
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@dataclass
class Service:
    """One long-running Dagster process, in its own process group, logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    stop_signal: int = signal.SIGTERM
    stop_timeout_s: float = 15
    popen: subprocess.Popen | None = None
    starts: int = 0
    wanted: bool = False  # started and not stopped on purpose

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        self.starts += 1
        self.wanted = True
        with self.log_path.open("a") as log:
            log.write(f"\n===== start {self.starts} =====\n")
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # killed as one group, children included
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int | None = None) -> bool:
        """Send sig (by default stop_signal) to the whole group; SIGKILL whatever is left
        after stop_timeout_s. True when the process was running and sig ended it in time."""
        self.wanted = False
        if self.popen is None:
            return False
        was_running, ended = self.alive(), False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, self.stop_signal if sig is None else sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=self.stop_timeout_s)
            ended = was_running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # anything left in the group
        self.popen.wait(timeout=10)
        return ended

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@dataclass
class Dagster:
    """Dagster's processes on one instance, the webserver on `port`, and ways to look at it."""

    services: list[Service]
    port: int
    home: Path
    instance: DagsterInstance
    run_timeout_s: float = RUN_TIMEOUT_S
    poll_s: float = 0.05
    launched: dict[str, float] = field(default_factory=dict)  # run or backfill id: time.time()
    unclean_stops: list[str] = field(default_factory=list)  # filled by serving()
    client: DagsterGraphQLClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=self.port)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def logs(self) -> str:
        return "\n".join(f"--- {s.name}:\n{s.tail()}" for s in self.services)

    def check_alive(self) -> None:
        for service in self.services:
            if service.wanted and not service.alive():
                code = service.popen.returncode if service.popen else None
                pytest.fail(f"{service.name} exited {code}:\n{self.logs()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return self.client._execute(query, variables or {})

    def code_location_loaded(self) -> bool:
        self.check_alive()
        try:
            result = self.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name "
                "locationOrLoadError { __typename } } } } }"
            )
        except Exception:
            return False
        entries = result.get("workspaceOrError", {}).get("locationEntries", [])
        return any(
            e["name"] == LOCATION
            and (e.get("locationOrLoadError") or {}).get("__typename") == "RepositoryLocation"
            for e in entries
        )

    def reload_location(self) -> None:
        """What the UI's Reload button does; the webserver then talks to the new server."""
        self.graphql(
            "mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name)"
            " { __typename } }",
            {"name": LOCATION},
        )
        wait_for(
            self.code_location_loaded,
            timeout=STARTUP_TIMEOUT_S,
            interval=self.poll_s,
            what="the webserver to load the code location again",
        )

    def submit(self, partition: date) -> str:
        started = time.time()
        run_id = self.client.submit_job_execution(
            reminders_job.name, tags={"dagster/partition": partition.isoformat()}
        )
        self.launched[run_id] = started
        return run_id

    def launch_backfill(self, days: list[date]) -> str:
        """A backfill of the job's partitions over GraphQL, as the UI launches one."""
        started = time.time()
        result = self.graphql(
            """
            mutation($params: LaunchBackfillParams!) {
              launchPartitionBackfill(backfillParams: $params) {
                __typename
                ... on LaunchBackfillSuccess { backfillId }
                ... on Error { message }
              }
            }
            """,
            {
                "params": {
                    "selector": {
                        "partitionSetName": f"{reminders_job.name}_partition_set",
                        "repositorySelector": {
                            "repositoryLocationName": LOCATION,
                            "repositoryName": "__repository__",
                        },
                    },
                    "partitionNames": [d.isoformat() for d in days],
                }
            },
        )["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        self.launched[result["backfillId"]] = started
        return result["backfillId"]

    def status(self, run_id: str) -> DagsterRunStatus:
        run = self.instance.get_run_by_id(run_id)
        assert run is not None, f"run {run_id} is unknown"
        return run.status

    def wait_status(
        self, run_id: str, *statuses: DagsterRunStatus, timeout: float | None = None
    ) -> DagsterRunStatus:
        def probe() -> DagsterRunStatus | None:
            self.check_alive()
            status = self.status(run_id)
            if status in statuses:
                return status
            if status in TERMINAL:
                messages = [e.message for e in self.instance.all_logs(run_id) if e.message][-8:]
                pytest.fail(
                    f"run {run_id} ended {status.value}, expected {statuses}:\n"
                    + "\n".join(messages)
                    + f"\n{self.logs()}"
                )
            return None

        return wait_for(
            probe,
            timeout=self.run_timeout_s if timeout is None else timeout,
            interval=self.poll_s,
            what=f"run {run_id} to be {statuses}",
        )

    def window(self, run_id: str) -> tuple[float, float]:
        record = self.instance.get_run_record_by_id(run_id)
        assert record and record.start_time and record.end_time
        return record.start_time, record.end_time

    def engine_messages(self, run_id: str) -> list[str]:
        return [
            e.message
            for e in self.instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if e.message
        ]

    def worker_pid(self, run_id: str) -> int:
        """The run worker's pid, from Dagster's own 'Started process for run' event."""
        for entry in self.instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
            if entry.message.startswith("Started process for run"):
                return int(entry.dagster_event.engine_event_data.metadata["pid"].value)
        pytest.fail(f"no run worker pid for run {run_id}")


def prepared_instance(home: Path) -> DagsterInstance:
    """The instance of `home`, its storage created before any Dagster process starts:
    processes starting together on a fresh home race to create the schema (alembic
    "more than one head"), which a loaded machine makes likely."""
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    instance.get_runs_count()
    _ = instance.event_log_storage, instance.schedule_storage
    return instance


@contextlib.contextmanager
def serving(dagster: Dagster) -> Iterator[Dagster]:
    """Start every service and wait until the webserver serves the code location; when the
    block ends, however it ends, stop every service and note in `unclean_stops` those
    still wanted that their stop signal did not end in time."""
    try:
        for service in dagster.services:
            service.start()
        wait_for(
            dagster.code_location_loaded,
            timeout=STARTUP_TIMEOUT_S,
            interval=dagster.poll_s,
            what="the webserver to serve the reminders code location",
        )
        yield dagster
    finally:
        for service in dagster.services:
            wanted = service.wanted
            if not service.stop() and wanted:
                dagster.unclean_stops.append(service.name)
        dagster.instance.dispose()


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
    argv = [str(DAGSTER_BIN), "dev", "-w", str(REPO / "workspace.yaml")]
    argv += ["-h", "127.0.0.1", "-p", str(port)]
    # Ctrl-C: dagster dev stops its webserver, daemon and code server itself.
    dev = Service("dagster-dev", argv, env, workdir, stop_signal=signal.SIGINT, stop_timeout_s=30)
    dagster = Dagster([dev], port, home, prepared_instance(home))
    with serving(dagster):
        yield dagster
    assert not dagster.unclean_stops, (
        f"dagster dev did not stop on Ctrl-C within 30 s:\n{dagster.logs()}"
    )
