"""The reminders job operated through a real Dagster webserver and daemon (`dagster dev`).

One `dagster dev` on a free port, with a temporary DAGSTER_HOME holding the shipped
dagster.yaml, so the run queue and run monitoring under test are the real ones.
Runs are held inside their lock window by a SHARE lock on `notifications` taken by
the test (the run's dispatch INSERT waits), so states are observed, not raced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.instance.ref import InstanceRef
from dagster_graphql import DagsterGraphQLClient

from reminders_pipeline.db.connector import Database, connect
from reminders_pipeline.db.lock_holder import LockHolder, find_lock_holder
from reminders_pipeline.orchestration.jobs import reminders_job
from tests.helpers.alert_servers import WebhookServer, free_port
from tests.helpers.data import add_assignment, add_mentor, notifications, runs
from tests.helpers.runs import wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]

REPO = Path(__file__).resolve().parents[2]
DAGSTER_BIN = Path(sys.executable).with_name("dagster")
STARTUP_TIMEOUT_S = 120
RUN_TIMEOUT_S = 90

# Three backfill days and assignments whose reminders differ from day to day.
D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
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


@pytest.fixture
def alert_webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def dagster_dev(
    reminders_env: dict[str, str], tmp_path: Path, alert_webhook: WebhookServer, dagster_yaml: Path
) -> Iterator[Dagster]:
    home = dagster_yaml.parent
    port = free_port()
    env = {
        **os.environ,
        **reminders_env,
        "PYTHONUNBUFFERED": "1",
        "REMINDERS_ALERT_WEBHOOK_URL": alert_webhook.url(),
        "REMINDERS_DAGSTER_UI_URL": f"http://127.0.0.1:{port}",
        "REMINDERS_SENSOR_INTERVAL_S": "5",
    }
    # Create the instance's SQLite storage before `dagster dev` starts: its webserver,
    # daemon and code server would otherwise race to create the schema on a fresh
    # home (alembic "more than one head"), which a loaded machine makes likely.
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    instance.get_runs_count()
    _ = instance.event_log_storage, instance.schedule_storage
    log_path = tmp_path / "dagster-dev.log"
    # Create the instance's SQLite storage before dagster dev starts: several processes
    # creating it at once can stamp two alembic heads, and the code location then fails.
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(DAGSTER_BIN), "dev", "-w", str(REPO / "workspace.yaml")]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=tmp_path,
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


class Gate:
    """Holds every run's dispatch at its first INSERT into notifications while closed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection | None = None

    def close(self) -> None:
        self.conn = psycopg.connect(self.url)
        self.conn.execute("LOCK TABLE notifications IN SHARE MODE")

    def open(self) -> None:
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None


def holder(url: str) -> LockHolder | None:
    with connect(url, autocommit=True) as conn:
        return find_lock_holder(conn)


def seed(db: Database) -> set[tuple[int, str, date, int]]:
    """Assignments for the three days; returns the reminders those days must create."""
    mentor = add_mentor(db)
    a = add_assignment(db, mentor, D1 - timedelta(days=10))  # due D1 (#1)
    b = add_assignment(db, mentor, D2 - timedelta(days=10))  # due D2 (#1)
    c = add_assignment(db, mentor, D1 - timedelta(days=1), interval_days=1)  # #1..#3 D1..D3
    add_assignment(db, mentor, D3)  # contact on D3: never due
    add_assignment(db, mentor, D1 - timedelta(days=30), status="paused")
    kind = "follow_up_reminder"
    return {
        (a, kind, D1, 1),
        (b, kind, D2, 1),
        (c, kind, D1, 1),
        (c, kind, D2, 2),
        (c, kind, D3, 3),
    }


def test_runs_queue_backfill_serially_and_a_killed_worker_frees_the_queue(
    dagster_dev: Dagster, db_url: str, db: Database, alert_webhook: WebhookServer
) -> None:
    dagster = dagster_dev
    due = seed(db)
    gate = Gate(db_url)
    try:
        # 1. Two submissions: one runs, the other waits in the queue, then runs.
        started = time.monotonic()
        gate.close()
        first, second = dagster.submit(D1), dagster.submit(D2)
        dagster.wait_status(first, DagsterRunStatus.STARTED)
        wait_for(
            lambda: (h := holder(db_url)) and h.run_id == first,
            timeout=RUN_TIMEOUT_S,
            what="the first run to hold the run lock",
        )
        time.sleep(6)  # longer than the daemon's dequeue interval (5 s)
        assert dagster.status(first) == DagsterRunStatus.STARTED
        assert dagster.status(second) == DagsterRunStatus.QUEUED
        gate.open()
        dagster.wait_status(first, DagsterRunStatus.SUCCESS)
        dagster.wait_status(second, DagsterRunStatus.SUCCESS)
        assert dagster.window(first)[1] <= dagster.window(second)[0]
        print(f"two queued runs: {time.monotonic() - started:.1f}s")

        # 2. A three-day backfill through the CLI: one at a time, in date order.
        started = time.monotonic()
        subprocess.run(
            [str(DAGSTER_BIN), "job", "backfill", "-j", reminders_job.name]
            + ["--from", D1.isoformat(), "--to", D3.isoformat(), "--noprompt"]
            + ["-w", str(REPO / "workspace.yaml")],
            env={**os.environ, "DAGSTER_HOME": str(dagster.home)},
            cwd=dagster.home,
            check=True,
            capture_output=True,
            timeout=RUN_TIMEOUT_S,
        )
        backfill_runs = _backfill_runs(dagster)  # the CLI creates and submits them all
        assert len(backfill_runs) == 3
        for run in backfill_runs:
            dagster.wait_status(run.run_id, DagsterRunStatus.SUCCESS)
        by_date = sorted(backfill_runs, key=lambda r: r.tags["dagster/partition"])
        assert [r.tags["dagster/partition"] for r in by_date] == [
            d.isoformat() for d in (D1, D2, D3)
        ]
        windows = [dagster.window(r.run_id) for r in by_date]
        for (_, earlier_end), (later_start, _) in zip(windows, windows[1:], strict=False):
            assert earlier_end <= later_start, "backfill partitions overlapped"
        assert set(notifications(db)) == due
        assert len(notifications(db)) == len(due), "a reminder was created twice"
        print(f"three-day backfill: {time.monotonic() - started:.1f}s")

        # 3. SIGKILL the worker of a running run: it fails, the lock is freed, the queue moves.
        started = time.monotonic()
        gate.close()
        doomed, survivor = dagster.submit(D3), dagster.submit(D3)
        dagster.wait_status(doomed, DagsterRunStatus.STARTED)
        wait_for(
            lambda: (h := holder(db_url)) and h.run_id == doomed,
            timeout=RUN_TIMEOUT_S,
            what="the doomed run to hold the run lock",
        )
        # Running, not only locked: its row is written just after the lock is taken.
        wait_for(
            lambda: any(
                r["dagster_run_id"] == doomed and r["status"] == "running" for r in runs(db)
            ),
            timeout=30,
            what="the doomed run's 'running' row",
        )
        assert dagster.status(survivor) == DagsterRunStatus.QUEUED
        os.kill(dagster.worker_pid(doomed), signal.SIGKILL)
        dagster.wait_status(doomed, DagsterRunStatus.FAILURE)
        wait_for(
            lambda: (h := holder(db_url)) is None or h.run_id == survivor,
            timeout=30,
            what="PostgreSQL to drop the killed run's lock",
        )
        wait_for(
            lambda: (h := holder(db_url)) and h.run_id == survivor,
            timeout=RUN_TIMEOUT_S,
            what="the queued run to start and take the lock",
        )
        gate.open()
        dagster.wait_status(survivor, DagsterRunStatus.SUCCESS)
        rows = {r["dagster_run_id"]: r for r in runs(db)}
        assert rows[doomed]["status"] == "abandoned"  # marked by the survivor
        assert rows[survivor]["status"] == "success"
        assert set(notifications(db)) == due
        print(f"killed worker and recovery: {time.monotonic() - started:.1f}s")

        # The failure sensor, running in the daemon, alerted once for the killed run.
        alert = wait_for(
            lambda: [r.body for r in alert_webhook.received if r.body["kind"] == "run_failed"],
            timeout=60,
            what="the run failure alert",
        )
        assert [a["facts"]["run id"] for a in alert] == [doomed]
        engine_messages = [
            e.message
            for e in dagster.instance.all_logs(doomed, of_type=DagsterEventType.ENGINE_EVENT)
        ]
        assert "signal 9 (SIGKILL)" in alert[0]["text"], engine_messages
        assert alert[0]["link"] == f"http://127.0.0.1:{dagster.port}/runs/{doomed}"
    finally:
        gate.open()


def _backfill_runs(dagster: Dagster) -> list:
    return [
        run
        for run in dagster.instance.get_runs(RunsFilter(job_name=reminders_job.name))
        if "dagster/backfill" in run.tags
    ]
