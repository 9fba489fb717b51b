"""The sensors' port, SensorReads: the in-memory fake and the real resource give the same answers.

Each case builds one world (runs, deliveries, sessions, the lock) through the fake's
builders or their real twins below, then asks both adapters the same questions;
the unit tests of the sensors trust the fake because this test holds it to the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from reminders_pipeline.alerts.messages import now_utc
from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.core.sensor_reads import SensorReads
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_holder import ONE_CALL_APPLICATION_NAME, application_name_for
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from tests.helpers.outbox import due_reminders
from tests.helpers.sensor_fakes import FakeReads


class DatabaseWorld:
    """FakeReads' builders, written to a real database."""

    def __init__(self, url: str, stack: ExitStack) -> None:
        self.url, self.db, self.stack = url, Database(url), stack
        self.free_notifications: list[int] = []

    def add_run(self, status: str, *, minutes_ago: float = 0, **columns: Any) -> int:
        values = {
            "dagster_run_id": None,
            "trigger": "cli",
            "error": None,
            "blocked_by_pid": None,
            "blocked_by_run_id": None,
            "lock_backend_pid": None,
        }
        values.update(columns)
        return self._insert(
            "INSERT INTO reminder_runs (status, as_of, started_at, dagster_run_id, trigger, error,"
            " blocked_by_pid, blocked_by_run_id, lock_backend_pid)"
            " VALUES (%(status)s, '2026-03-30', clock_timestamp() - make_interval(secs => %(s)s),"
            " %(dagster_run_id)s, %(trigger)s, %(error)s, %(blocked_by_pid)s,"
            " %(blocked_by_run_id)s, %(lock_backend_pid)s) RETURNING id",
            {"status": status, "s": minutes_ago * 60, **values},
        )  # fmt: skip

    def add_delivery(
        self,
        state: str,
        *,
        created_minutes_ago: float = 0,
        finished_minutes_ago: float | None = None,
        last_error: str | None = None,
    ) -> int:
        if not self.free_notifications:
            due_reminders(self.db, 8)
            with self.db.connection() as conn:
                rows = conn.execute("SELECT id FROM notifications ORDER BY id").fetchall()
            self.free_notifications = [r["id"] for r in rows]
        finished_s = None if finished_minutes_ago is None else finished_minutes_ago * 60
        return self._insert(
            "INSERT INTO deliveries (notification_id, channel, state, created_at, finished_at,"
            " last_error) VALUES (%(n)s, 'webhook', %(state)s,"
            " now() - make_interval(secs => %(created_s)s),"
            " now() - make_interval(secs => %(finished_s)s), %(error)s) RETURNING id",
            {"n": self.free_notifications.pop(0), "state": state,
             "created_s": created_minutes_ago * 60, "finished_s": finished_s,
             "error": last_error},
        )  # fmt: skip

    def _insert(self, sql: str, params: dict[str, Any]) -> int:
        with self.db.connection() as conn:
            return conn.execute(sql, params).fetchone()["id"]

    def open_session(self, run_id: str | None) -> int:
        conn = self.stack.enter_context(
            psycopg.connect(
                self.url, autocommit=True, application_name=application_name_for(run_id)
            )
        )
        return conn.info.backend_pid

    def hold_lock(self, run_id: str | None) -> int:
        lock = self.stack.enter_context(RunLock(self.url, run_id))
        assert lock.try_acquire()
        return lock.backend_pid

    def hold_lock_in_one_call(self) -> int:
        conn = self.stack.enter_context(psycopg.connect(self.url))  # rolled back at the end
        assert conn.execute("SELECT status FROM reminders_run_day()").fetchone()[0] == "success"
        return conn.info.backend_pid


@pytest.fixture(params=["fake", "database"])
def world(request: pytest.FixtureRequest) -> Iterator[tuple[Any, SensorReads]]:
    """(the builders, the adapter under test): FakeReads for both, or the real pair."""
    if request.param == "fake":
        fake = FakeReads()
        yield fake, fake
        return
    url = request.getfixturevalue("db_url")
    with ExitStack() as stack:
        yield DatabaseWorld(url, stack), RemindersDatabaseResource(database_url=url)


def recent(moment: datetime | None, minutes_ago: float = 0) -> bool:
    """Whether `moment` is `minutes_ago` before now, give or take the test's own time."""
    assert moment is not None
    return abs(now_utc() - timedelta(minutes=minutes_ago) - moment) < timedelta(seconds=30)


def test_the_lock_holder_is_nobody_then_the_session_that_took_it(world) -> None:
    build, reads = world
    assert reads.lock_holder() is None
    pid = build.hold_lock("r-conformance")
    holder = reads.lock_holder()
    assert holder is not None
    assert (holder.pid, holder.run_id, holder.application_name) == (
        pid,
        "r-conformance",
        "reminders-run:r-conformance",
    )
    assert recent(holder.since) and recent(holder.state_change)
    assert holder.state == "idle"


def test_a_one_call_run_left_open_holds_it_under_the_functions_name(world) -> None:
    build, reads = world
    pid = build.hold_lock_in_one_call()
    holder = reads.lock_holder()
    assert holder is not None
    assert (holder.pid, holder.run_id, holder.application_name, holder.state) == (
        pid,
        None,
        ONE_CALL_APPLICATION_NAME,
        "idle in transaction",
    )
    assert recent(holder.since) and recent(holder.state_change)


def test_a_holder_without_a_run_id_has_none(world) -> None:
    build, reads = world
    build.hold_lock(None)
    holder = reads.lock_holder()
    assert holder is not None
    assert (holder.run_id, holder.application_name) == (None, "reminders-run:unknown")


def test_latest_runs_are_newest_started_first_with_what_a_skip_recorded(world) -> None:
    build, reads = world
    assert reads.latest_runs(10) == []
    old = build.add_run("success", minutes_ago=30, dagster_run_id="r-1")
    skipped = build.add_run(
        "skipped", minutes_ago=5, error="Skipped: locked", blocked_by_pid=77,
        blocked_by_run_id="r-stuck",
    )  # fmt: skip
    middle = build.add_run("failed", minutes_ago=10, error="boom")  # a later id, started earlier
    rows = reads.latest_runs(10)
    assert [r["id"] for r in rows] == [skipped, middle, old]
    assert [r["status"] for r in rows] == ["skipped", "failed", "success"]
    first = rows[0]
    assert (first["error"], first["blocked_by_pid"], first["blocked_by_run_id"]) == (
        "Skipped: locked",
        77,
        "r-stuck",
    )
    assert rows[2]["blocked_by_pid"] is None and rows[2]["error"] is None
    assert recent(first["started_at"], 5) and recent(rows[2]["started_at"], 30)
    assert [r["id"] for r in reads.latest_runs(2)] == [skipped, middle]


def test_runs_of_a_dagster_run_are_its_rows_newest_first(world) -> None:
    build, reads = world
    first = build.add_run("abandoned", minutes_ago=20, dagster_run_id="r-again")
    build.add_run("success", minutes_ago=15, dagster_run_id="r-other")
    second = build.add_run("running", minutes_ago=1, dagster_run_id="r-again")
    rows = reads.runs_of("r-again")
    assert [(r["id"], r["status"]) for r in rows] == [(second, "running"), (first, "abandoned")]
    assert reads.runs_of("r-unknown") == []


def test_running_rows_started_before_a_threshold_by_id(world) -> None:
    build, reads = world
    young = build.add_run("running", minutes_ago=1, dagster_run_id="r-young", lock_backend_pid=11)
    old = build.add_run(
        "running", minutes_ago=40, dagster_run_id="r-old", trigger="schedule",
        lock_backend_pid=12,
    )  # fmt: skip
    build.add_run("success", minutes_ago=50, dagster_run_id="r-done")
    [row] = reads.running_started_before(30 * 60)
    assert (row["id"], row["dagster_run_id"], row["trigger"], row["lock_backend_pid"]) == (
        old,
        "r-old",
        "schedule",
        12,
    )
    assert recent(row["started_at"], 40)
    assert [r["id"] for r in reads.running_started_before(0)] == [young, old]


def test_delivery_health_of_an_empty_outbox(world) -> None:
    _, reads = world
    assert reads.delivery_health(None, 0) == {
        "new_dead": 0,
        "last_dead_id": None,
        "last_dead_at": None,
        "recent_errors": None,
        "oldest_pending_s": None,
    }


def test_delivery_health_counts_dead_after_the_place_and_the_oldest_waiting(world) -> None:
    build, reads = world
    build.add_delivery("sent", created_minutes_ago=600, finished_minutes_ago=590)
    build.add_delivery("cancelled", created_minutes_ago=500, finished_minutes_ago=490)
    build.add_delivery("retry", created_minutes_ago=90)
    build.add_delivery("pending", created_minutes_ago=30)
    early = build.add_delivery("dead", finished_minutes_ago=20, last_error="HTTP 410")
    build.add_delivery("dead", finished_minutes_ago=10)  # no error recorded
    late = build.add_delivery("dead", finished_minutes_ago=5, last_error="HTTP 503")
    build.add_delivery("dead", finished_minutes_ago=15, last_error="refused")

    health = reads.delivery_health(None, 0)
    assert (health["new_dead"], health["last_dead_id"]) == (4, late)
    assert recent(health["last_dead_at"], 5)
    assert health["recent_errors"] == "HTTP 503 / refused", "the latest three, none recorded"
    assert abs(health["oldest_pending_s"] - 90 * 60) < 30

    place = reads.delivery_health(None, 0)["last_dead_at"].isoformat()
    after = reads.delivery_health(place, late)
    assert (after["new_dead"], after["recent_errors"], after["last_dead_id"]) == (0, None, late)
    middle = reads.delivery_health(
        (now_utc() - timedelta(minutes=17)).isoformat(), early
    )  # the two that died since
    assert middle["new_dead"] == 3
    assert middle["recent_errors"] == "HTTP 503 / refused"


def test_live_run_ids_are_the_runs_with_a_session_lock_or_not(world) -> None:
    build, reads = world
    between_steps, holding, gone = (f"r-{uuid.uuid4().hex[:8]}" for _ in range(3))
    build.open_session(between_steps)
    build.hold_lock(holding)
    live = reads.live_run_ids()
    # The server's sessions of other databases count too: only these runs are known here.
    assert {between_steps, holding} <= live
    assert gone not in live
