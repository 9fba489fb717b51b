"""The Dagster UI as an operator sees it, in a real browser, opened by `reminders ui`.

`reminders ui` (the README's one command) starts `dagster dev` on a free loopback
port with the project's instance settings, against this test's database. Before
it starts, two runs go through the CLI's launch path into the same Dagster home:
one that creates the day's reminder, one skipped because another session holds
the lock. Headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
selenium) then finds the job and its op descriptions, the schedule with its
timezone, the five sensors, both runs told apart by their outcome tag, the
successful run with its metadata and materialization, and the skipped day shown
as missing on the asset's Partitions tab. The UI is a React app: every check
waits for its text explicitly.

Screenshots go to the test's tmp folder; with REMINDERS_UI_SCREENSHOTS=<dir>
they go there (docs/img holds the ones docs/operations.md shows).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from dagster_graphql import DagsterGraphQLClient

from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.db.connector import Database
from reminders_pipeline.orchestration.dagster_home import shipped_instance_yaml
from reminders_pipeline.orchestration.launch import run_reminders_job
from tests.helpers.data import add_assignment, add_mentor
from tests.helpers.ports import free_port
from tests.helpers.runs import today, wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REMINDERS_BIN = Path(sys.executable).with_name("reminders")
STARTUP_TIMEOUT_S = 120
PAGE_TIMEOUT_S = 60
SENSORS = (
    "long_running_reminders_sensor",
    "reminders_run_failure_sensor",
    "repeated_skips_sensor",
    "stale_lock_sensor",
    "zombie_run_sensor",
)
OPS = ("acquire_run_lock", "select_due_assignments", "dispatch_reminders", "release_run_lock")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver packages "
        "(apt-get install -y chromium chromium-driver; .ci/run installs them)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class UI:
    """A headless Chromium on one `dagster dev`, with explicit waits."""

    def __init__(self, base_url: str, shots: Path) -> None:
        self.base_url = base_url
        self.shots = shots
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
            f"--user-data-dir={self.profile}",
        ):
            options.add_argument(flag)
        service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
        self.driver = webdriver.Chrome(service=service, options=options)

    def close(self) -> None:
        with contextlib.suppress(WebDriverException):
            self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def text(self) -> str:
        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except WebDriverException:
            return ""

    def wait(self, what: str, predicate: Callable[[str], bool]) -> str:
        """Wait until the page's text satisfies predicate; returns that text."""
        try:
            WebDriverWait(self.driver, PAGE_TIMEOUT_S, poll_frequency=0.25).until(
                lambda _driver: predicate(self.text())
            )
        except Exception:
            self.shot("failed")
            pytest.fail(
                f"{what}: not shown at {self.driver.current_url} within {PAGE_TIMEOUT_S}s; "
                f"page text: {self.text()[:1500]!r}"
            )
        return self.text()

    def open(self, path: str, *texts: str) -> str:
        """Load a page and wait until all `texts` are on it."""
        self.driver.get(self.base_url + path)
        return self.wait(f"{texts} on {path}", lambda page: all(t in page for t in texts))

    def first_visit(self) -> None:
        """Dagster shows a "Join the Dagster community" dialog on a first visit, a moment
        after the page loads, over whatever is there: wait for it once and skip it."""
        self.driver.get(self.base_url + "/overview")
        with contextlib.suppress(Exception):
            WebDriverWait(self.driver, 20, poll_frequency=0.25).until(
                lambda _driver: "Join the Dagster community" in self.text()
            )
        self.dismiss_newsletter()

    def dismiss_newsletter(self) -> None:
        for button in self.driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            if button.is_displayed():
                button.click()
                WebDriverWait(self.driver, 10).until(
                    lambda _driver: "Join the Dagster community" not in self.text()
                )

    def click_text(self, text: str) -> None:
        self.dismiss_newsletter()
        element = WebDriverWait(self.driver, PAGE_TIMEOUT_S).until(
            lambda driver: next(
                (
                    e
                    for e in driver.find_elements(
                        By.XPATH, f"//*[normalize-space(text())='{text}']"
                    )
                    if e.is_displayed()
                ),
                False,
            )
        )
        element.click()

    def shot(self, name: str) -> Path:
        self.dismiss_newsletter()
        path = self.shots / f"ui-{name}.png"  # the names docs/img uses
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("REMINDERS_UI_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _start_ui(env: dict[str, str], port: int, log_path: Path, cwd: Path) -> subprocess.Popen:
    with log_path.open("w") as log:
        return subprocess.Popen(
            [str(REMINDERS_BIN), "ui", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: nothing survives the test
        )


def _stop_ui(process: subprocess.Popen) -> bool:
    """SIGTERM to `reminders ui` (it passes Ctrl-C to dagster dev); True when that was
    enough within 45 s. Whatever is left of the process group is killed."""
    clean = False
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=45)
            clean = True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    return clean


def test_an_operator_sees_the_truth_in_the_dagster_ui(
    reminders_env: dict[str, str],
    db: Database,
    db_url: str,
    tmp_path: Path,
    screenshots: Path,
) -> None:
    started = time.monotonic()
    done_day, skipped_day = today() - timedelta(days=2), today() - timedelta(days=1)
    mentor = add_mentor(db)
    add_assignment(db, mentor, done_day - timedelta(days=10))
    done = run_reminders_job(db_url, done_day)
    with RunLock(db_url, "another-run") as lock:
        assert lock.try_acquire()
        skipped = run_reminders_job(db_url, skipped_day)
    assert (done.status, skipped.status) == ("success", "skipped")

    port = free_port()
    env = {**os.environ, **reminders_env, "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "reminders-ui.log"
    process = _start_ui(env, port, log_path, tmp_path)
    ui: UI | None = None
    try:
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)

        def loaded() -> bool:
            if process.poll() is not None:
                pytest.fail(f"reminders ui exited {process.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(Exception):
                result = client._execute(
                    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
                )
                return bool(result["repositoriesOrError"]["nodes"])
            return False

        wait_for(loaded, timeout=STARTUP_TIMEOUT_S, what="reminders ui to serve the code location")
        # The Dagster home now has the shipped instance settings (queue limit, run
        # monitoring), replacing the telemetry-only file the fixture wrote.
        home = Path(reminders_env["DAGSTER_HOME"])
        assert (home / "dagster.yaml").read_text() == shipped_instance_yaml()
        served_after = time.monotonic() - started

        ui = UI(f"http://127.0.0.1:{port}", screenshots)
        ui.first_visit()

        ui.open(
            "/locations/reminders_pipeline/jobs/reminders_job",
            *OPS,
            "reminders/singleton: daily-follow-up",
        )
        ui.shot("job")
        ui.click_text("dispatch_reminders")  # the op's own panel shows its description
        ui.wait(
            "the op description", lambda text: "Creates the reminders due on the as-of date" in text
        )

        page = ui.open(
            "/locations/reminders_pipeline/schedules/daily_reminders_schedule",
            "Execution timezone",
        )
        assert "Europe/Oslo" in page.split("Execution timezone", 1)[1]
        assert "Daily at 06:00 Europe/Oslo" in page
        ui.shot("schedule")

        page = ui.open("/automation", "daily_reminders_schedule", *SENSORS)
        ui.shot("automation")
        page = ui.open("/locations/reminders_pipeline/sensors/stale_lock_sensor", "Watches")
        assert "Alerts go to the sensor's log" in page

        # The Runs list tells the skipped run from the successful one by its tag.
        page = ui.open(
            "/runs",
            "reminders/outcome: skipped",
            "reminders/outcome: success",
            done.dagster_run_id[:8],
        )
        ui.shot("runs")

        # The run's log, filtered to its last step (the log is a virtualised list).
        page = ui.open(
            f"/runs/{done.dagster_run_id}?logs=step%3Arelease_run_lock",
            "ASSET_MATERIALIZATION",
            "reminder_runs_id",
            "already_existed",
        )
        assert f"partition: {done_day.isoformat()}" in page
        assert "reminders / daily_reminders" in page
        ui.shot("run")

        # The asset: one day materialized, the skipped day (and today) missing.
        page = ui.open(
            "/assets/reminders/daily_reminders?view=partitions",
            "Materialized (1)",
            "Missing (",
            skipped_day.isoformat(),
        )
        ui.click_text(skipped_day.isoformat())
        page = ui.wait(
            "the skipped day's details",
            lambda text: "Latest materialization" in text and "None" in text,
        )
        ui.shot("asset-partitions-missing-day")
        ui.click_text(done_day.isoformat())
        page = ui.wait(
            "the done day's materialization",
            lambda text: done.dagster_run_id[:8] in text and "created" in text,
        )
        ui.shot("asset-partitions-done-day")
        print(
            f"reminders ui served after {served_after:.1f}s; "
            f"browser checks done after {time.monotonic() - started:.1f}s"
        )
    finally:
        if ui is not None:
            ui.close()
        clean = _stop_ui(process)
    assert clean, f"reminders ui did not stop on SIGTERM within 45 s:\n{log_path.read_text()}"
