"""The production topology: gRPC code server, daemon and webserver as separate processes.

Each process is started as docs/operations.md says: the shipped dagster.postgres.yaml
in its own DAGSTER_HOME, Dagster's storage in a database of its own on the test
server, the shipped workspace.grpc.yaml (the webserver and the daemon reach the code
through the code server), every port a free loopback one. Runs and a backfill are
launched over the webserver's GraphQL, as the UI does. Then what production does to
a deployment: a daemon SIGKILLed mid-run, a code server restarted while a run waits
in the queue, and a second, independent Dagster deployment on the same reminders
database. Launch-to-success times are printed (pytest -s shows them).

Runs are held inside their lock window by a SHARE lock on `notifications` (the run's
dispatch INSERT waits), so states are observed, not raced.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.instance.ref import InstanceRef
from dagster_graphql import DagsterGraphQLClient
from psycopg.conninfo import conninfo_to_dict

from reminders_pipeline.db.connector import Database
from reminders_pipeline.orchestration.jobs import reminders_job
from tests.helpers.dagster_storage import drop_database, postgres_storage_home
from tests.helpers.data import D1, D2, D3, notifications, runs, seed_three_days
from tests.helpers.ports import free_port
from tests.helpers.runs import NotificationsGate, lock_holder, wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 120
RUN_TIMEOUT_S = 120
# The daemon refreshes a workspace that failed to load every 60 s; with the code
# server back, a queued run is launched at the next retry after that.
OUTAGE_RECOVERY_TIMEOUT_S = 150
POLL_S = 0.5
LOCATION = "reminders_pipeline"
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
RETRY_MESSAGE = "Run dequeue failed to reach the user code server, re-submitting the run"


# ------------------------------------------------------------------ processes


@dataclass
class Service:
    """One long-running Dagster process, in its own process group, logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path
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

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        """Send sig to the whole group; SIGKILL whatever is left after timeout."""
        self.wanted = False
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@dataclass
class Deployment:
    """Code server, daemon and webserver on one Dagster instance, and ways to look at it."""

    home: Path
    env: dict[str, str]
    code_server: Service
    daemon: Service
    webserver: Service
    webserver_port: int
    instance: DagsterInstance
    client: DagsterGraphQLClient
    launched: dict[str, float] = field(default_factory=dict)

    @property
    def services(self) -> list[Service]:
        return [self.code_server, self.daemon, self.webserver]

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
            interval=POLL_S,
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
        self, run_id: str, *statuses: DagsterRunStatus, timeout: float = RUN_TIMEOUT_S
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
            probe, timeout=timeout, interval=POLL_S, what=f"run {run_id} to be {statuses}"
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


@pytest.fixture
def deployment(
    pg_server_url: str,
    reminders_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    home = tmp_path / "dagster_home"  # docs: mkdir -p, then cp
    name, pg_env = postgres_storage_home(pg_server_url, "dagster_prod", home)
    code_port, web_port = free_port(), free_port()
    # Each process gets what docs/operations.md lists for it, and nothing more: only the
    # code server (which runs the sensors, the schedule and the runs) sees the
    # reminders database; only the daemon and the webserver need the code server's address.
    common = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")},
        **pg_env,
        "DAGSTER_HOME": str(home),
        "DAGSTER_COMPUTE_LOGS_DIR": str(tmp_path / "shared" / "compute_logs"),
        "PYTHONUNBUFFERED": "1",
    }
    code_env = {
        **common,
        **{k: v for k, v in reminders_env.items() if k.startswith("REMINDERS_")},
        "REMINDERS_DAGSTER_UI_URL": f"http://127.0.0.1:{web_port}",
    }
    ui_env = {
        **common,
        "REMINDERS_CODE_SERVER_HOST": "127.0.0.1",
        "REMINDERS_CODE_SERVER_PORT": str(code_port),
    }
    for var in ("DAGSTER_HOME", "DAGSTER_COMPUTE_LOGS_DIR", *pg_env):
        monkeypatch.setenv(var, common[var])  # the test's own instance reads the same file
    workspace = str(REPO / "workspace.grpc.yaml")
    workdir = tmp_path / "services"
    workdir.mkdir()
    code_server = Service(
        "code-server",
        [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(code_port)]
        + ["-m", "reminders_pipeline.orchestration.definitions", "--location-name", LOCATION],
        code_env,
        workdir,
    )
    daemon = Service(
        "daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], ui_env, workdir
    )
    webserver = Service(
        "webserver",
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", workspace],
        ui_env,
        workdir,
    )
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))  # creates the schema
    dep = Deployment(
        home,
        common,
        code_server,
        daemon,
        webserver,
        web_port,
        instance,
        DagsterGraphQLClient("127.0.0.1", port_number=web_port),
    )
    try:
        for service in dep.services:
            service.start()
        wait_for(
            dep.code_location_loaded,
            timeout=STARTUP_TIMEOUT_S,
            interval=POLL_S,
            what=f"the webserver to serve the code server's location:\n{dep.logs()}",
        )
        yield dep
    finally:
        for service in dep.services:
            service.stop()
        instance.dispose()
        drop_database(pg_server_url, name)


@pytest.fixture
def second_deployment_home(
    pg_server_url: str, tmp_path: Path
) -> Iterator[tuple[Path, dict[str, str]]]:
    """Another Dagster instance, on storage of its own, for the same reminders database."""
    home = tmp_path / "other_dagster_home"
    name, pg_env = postgres_storage_home(pg_server_url, "dagster_other", home)
    try:
        yield (
            home,
            {
                **pg_env,
                "DAGSTER_HOME": str(home),
                "DAGSTER_COMPUTE_LOGS_DIR": str(tmp_path / "other_compute_logs"),
            },
        )
    finally:
        drop_database(pg_server_url, name)


def holder_run_id(url: str) -> str | None:
    holder = lock_holder(url)
    name = (holder or {}).get("application_name") or ""
    return name.removeprefix("reminders-run:") if name.startswith("reminders-run:") else None


class ConnectionPeaks:
    """Samples pg_stat_activity in the background: the most sessions seen per database."""

    def __init__(self, server_url: str, databases: list[str]) -> None:
        self.server_url = server_url
        self.databases = databases
        self.peaks: dict[str, int] = dict.fromkeys(databases, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            while not self._stop.wait(0.2):
                for name, count in conn.execute(
                    "SELECT datname, count(*) FROM pg_stat_activity "
                    "WHERE datname = ANY(%s) GROUP BY datname",
                    (self.databases,),
                ):
                    self.peaks[name] = max(self.peaks[name], count)

    def __enter__(self) -> ConnectionPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def connection_peaks(
    pg_server_url: str, deployment: Deployment, db_url: str
) -> Iterator[ConnectionPeaks]:
    databases = [deployment.env["DAGSTER_PG_DB"], str(conninfo_to_dict(db_url)["dbname"])]
    with ConnectionPeaks(pg_server_url, databases) as peaks:
        yield peaks


# ------------------------------------------------------------------ the test


def test_production_topology_queues_survives_restarts_and_kills_and_shares_the_lock(
    deployment: Deployment,
    second_deployment_home: tuple[Path, dict[str, str]],
    db: Database,
    db_url: str,
    reminders_env: dict[str, str],
    connection_peaks: ConnectionPeaks,
) -> None:
    dep = deployment
    due = seed_three_days(db)
    figures: list[str] = []

    def figure(label: str, run_id: str, launched_at: float) -> None:
        start, end = dep.window(run_id)
        figures.append(
            f"{label:<44} launch->SUCCESS {end - launched_at:5.1f}s  own work {end - start:4.1f}s"
        )

    # 1. Two runs over GraphQL: one holds the lock, the other waits in the queue.
    gate = NotificationsGate(db_url)
    try:
        first, second = dep.submit(D1), dep.submit(D2)
        dep.wait_status(first, DagsterRunStatus.STARTED)
        wait_for(
            lambda: holder_run_id(db_url) == first,
            timeout=RUN_TIMEOUT_S,
            interval=POLL_S,
            what="the first run to hold the run lock",
        )
        time.sleep(6)  # longer than the daemon's dequeue interval (5 s)
        assert dep.status(second) == DagsterRunStatus.QUEUED, "the queue let a second run start"

        # 2. A second, independent deployment (its own Dagster storage) on the same
        #    reminders database, while the first run holds the lock: skipped, naming it.
        other_home, other_env = second_deployment_home
        other = subprocess.run(
            [str(BIN / "reminders"), "run", "--json", "--as-of", D1.isoformat()],
            env={**os.environ, **reminders_env, **other_env},
            cwd=other_home,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert other.returncode == 0, other.stderr[-3000:]
        summary = json.loads(other.stdout)
        assert summary["status"] == "skipped", summary
        assert summary["blocked_by"]["run_id"] == first, summary
        assert summary["blocked_by"]["application_name"] == f"reminders-run:{first}", summary
        skipped_row = next(r for r in runs(db) if r["dagster_run_id"] == summary["run_id"])
        assert skipped_row["status"] == "skipped" and skipped_row["blocked_by_run_id"] == first
        assert dep.instance.get_run_by_id(summary["run_id"]) is None, "storage is shared"

        # 3. SIGKILL the daemon mid-run: the run's worker lives under the code server and
        #    finishes; the queued run waits (no daemon to dequeue it).
        dep.daemon.stop(signal.SIGKILL)
        gate.open()
        dep.wait_status(first, DagsterRunStatus.SUCCESS)
        figure("run 1 (held by the test, daemon killed)", first, dep.launched[first])
        time.sleep(6)
        assert dep.status(second) == DagsterRunStatus.QUEUED
    finally:
        gate.open()

    # 4. A deploy: the code server goes down with a run in the queue, the daemon comes
    #    back meanwhile and cannot reach the code; the run stays queued (run_queue
    #    retries) and succeeds once the code server is back.
    outage_started = time.monotonic()
    dep.code_server.stop(signal.SIGTERM)
    dep.daemon.start()

    def dequeue_retried() -> bool:
        messages = dep.engine_messages(second)
        if dep.status(second) in TERMINAL:  # without run_queue retries: FAILURE, dropped
            pytest.fail(f"the queued run ended {dep.status(second).value}: {messages[-3:]}")
        return any(RETRY_MESSAGE in m for m in messages)

    wait_for(
        dequeue_retried,
        timeout=RUN_TIMEOUT_S,
        interval=POLL_S,
        what=f"the daemon to fail to reach the code server for the queued run:\n{dep.logs()}",
    )
    assert dep.status(second) == DagsterRunStatus.QUEUED, dep.engine_messages(second)
    dep.code_server.start()
    dep.wait_status(second, DagsterRunStatus.SUCCESS, timeout=OUTAGE_RECOVERY_TIMEOUT_S)
    figures.append(
        f"code-server outage to queued run's SUCCESS: {time.monotonic() - outage_started:.1f}s"
    )
    figure("run 2 (queued through the restart)", second, dep.launched[second])
    assert dep.window(first)[1] <= dep.window(second)[0]

    # 5. A three-day backfill over GraphQL after the restart: one run at a time, in
    #    date order, exactly the due reminders.
    dep.reload_location()
    backfill = dep.launch_backfill([D1, D2, D3])
    backfill_runs = wait_for(
        lambda: (
            len(r := dep.instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill}))) == 3
            and r
        ),
        timeout=RUN_TIMEOUT_S,
        interval=POLL_S,
        what="the backfill daemon to create three runs",
    )
    for run in backfill_runs:
        dep.wait_status(run.run_id, DagsterRunStatus.SUCCESS)
    by_date = sorted(backfill_runs, key=lambda r: r.tags["dagster/partition"])
    assert [r.tags["dagster/partition"] for r in by_date] == [d.isoformat() for d in (D1, D2, D3)]
    windows = [dep.window(r.run_id) for r in by_date]
    for (_, earlier_end), (later_start, _) in zip(windows, windows[1:], strict=False):
        assert earlier_end <= later_start, "backfill partitions overlapped"
    for run in by_date:
        figure(f"backfill {run.tags['dagster/partition']}", run.run_id, dep.launched[backfill])

    assert set(notifications(db)) == due
    assert len(notifications(db)) == len(due), "a reminder was created twice"
    statuses = [r["status"] for r in runs(db)]
    assert statuses.count("skipped") == 1 and statuses.count("success") == 5, statuses
    assert holder_run_id(db_url) is None

    storage_peak, reminders_peak = connection_peaks.peaks.values()
    figures.append(
        f"peak sessions: Dagster storage {storage_peak}, "
        f"reminders database {reminders_peak} (the test's own included)"
    )
    print("\nproduction topology, launch-to-success:\n  " + "\n  ".join(figures))
