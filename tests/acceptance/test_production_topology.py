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

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterRunStatus, RunsFilter
from psycopg.conninfo import conninfo_to_dict

from reminders_pipeline.db.connector import Database
from tests.helpers.dagster_dev import (
    BIN,
    LOCATION,
    REPO,
    TERMINAL,
    Dagster,
    Service,
    prepared_instance,
    serving,
)
from tests.helpers.dagster_storage import drop_database, postgres_storage_home
from tests.helpers.data import D1, D2, D3, notifications, runs, seed_three_days
from tests.helpers.ports import free_port
from tests.helpers.runs import NotificationsGate, lock_holder, wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]

RUN_TIMEOUT_S = 120
# The daemon refreshes a workspace that failed to load every 60 s; with the code
# server back, a queued run is launched at the next retry after that.
OUTAGE_RECOVERY_TIMEOUT_S = 150
POLL_S = 0.5
RETRY_MESSAGE = "Run dequeue failed to reach the user code server, re-submitting the run"


@pytest.fixture
def deployment(
    pg_server_url: str,
    reminders_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Dagster]:
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
    dep = Dagster(
        [code_server, daemon, webserver],
        web_port,
        home,
        prepared_instance(home),
        run_timeout_s=RUN_TIMEOUT_S,
        poll_s=POLL_S,
    )
    try:
        with serving(dep):
            yield dep
    finally:
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
    pg_server_url: str, deployment: Dagster, db_url: str
) -> Iterator[ConnectionPeaks]:
    storage = deployment.service("webserver").env["DAGSTER_PG_DB"]
    databases = [storage, str(conninfo_to_dict(db_url)["dbname"])]
    with ConnectionPeaks(pg_server_url, databases) as peaks:
        yield peaks


# ------------------------------------------------------------------ the test


def test_production_topology_queues_survives_restarts_and_kills_and_shares_the_lock(
    deployment: Dagster,
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
        dep.service("daemon").stop(signal.SIGKILL)
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
    dep.service("code-server").stop(signal.SIGTERM)
    dep.service("daemon").start()

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
    dep.service("code-server").start()
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
