"""find_zombies: which runs in progress have lost their worker (plain Python, no database)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reminders_pipeline.core import zombies
from reminders_pipeline.core.zombies import RunSeen, Zombie, find_zombies, zombie_failure_message

T0 = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


def run(run_id: str, started_minutes_before_t0: float = 60, status: str = "STARTED") -> RunSeen:
    return RunSeen(run_id, status, T0 - timedelta(minutes=started_minutes_before_t0), "2026-03-30")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_run_without_a_session_is_a_zombie_only_after_two_evaluations_grace_apart() -> None:
    runs = [run("dead")]
    first = find_zombies(runs, set(), {}, at(0), GRACE)
    assert first.zombies == [], "one look is never enough, however old the run"
    assert first.missing_since == {"dead": at(0)}

    middle = find_zombies(runs, set(), first.missing_since, at(4), GRACE)
    assert middle.zombies == []
    assert middle.missing_since == {"dead": at(0)}, "the count keeps its first sighting"

    last = find_zombies(runs, set(), middle.missing_since, at(5), GRACE)
    assert last.zombies == [Zombie(runs[0], at(0))]
    assert last.missing_since == {}
    assert last.zombies[0].missing_for(at(5)) == GRACE


def test_a_run_with_a_session_is_never_a_zombie_and_its_count_starts_again() -> None:
    runs = [run("alive")]
    seen = find_zombies(runs, set(), {}, at(0), GRACE).missing_since
    back = find_zombies(runs, {"alive"}, seen, at(3), GRACE)
    assert back.zombies == [] and back.missing_since == {}
    # Gone again: a fresh count from this evaluation, not from the first sighting.
    again = find_zombies(runs, set(), back.missing_since, at(6), GRACE)
    assert again.zombies == [] and again.missing_since == {"alive": at(6)}
    assert find_zombies(runs, set(), again.missing_since, at(11), GRACE).zombies != []


def test_a_run_younger_than_grace_is_left_alone_before_its_lock_connection_opens() -> None:
    # Started one minute before the first look: resource setup, no session yet.
    young = run("starting", started_minutes_before_t0=1)
    seen = find_zombies([young], set(), {}, at(0), GRACE).missing_since
    # Even if the sensor's memory says "missing for long" (e.g. a stale cursor), the
    # run's own start time must also be grace old.
    verdict = find_zombies([young], set(), {"starting": at(-10)}, at(3), GRACE)
    assert verdict.zombies == []
    assert verdict.missing_since == {"starting": at(-10)}
    assert seen == {"starting": at(0)}
    # Old enough and still missing: a zombie.
    assert find_zombies([young], set(), seen, at(5), GRACE).zombies != []


def test_a_run_with_unknown_start_is_judged_on_the_observations_alone() -> None:
    unknown = RunSeen("no-start", "STARTED", None)
    seen = find_zombies([unknown], set(), {}, at(0), GRACE).missing_since
    assert find_zombies([unknown], set(), seen, at(4.9), GRACE).zombies == []
    assert find_zombies([unknown], set(), seen, at(5), GRACE).zombies != []


def test_runs_no_longer_in_progress_leave_the_memory() -> None:
    seen = {"ended": at(-10), "dead": at(-10)}
    verdict = find_zombies([run("dead")], set(), seen, at(0), GRACE)
    assert [z.run.run_id for z in verdict.zombies] == ["dead"]
    assert verdict.missing_since == {}


def test_several_runs_each_judged_on_its_own() -> None:
    runs = [run("a"), run("b"), run("c", status="STARTING"), run("d", started_minutes_before_t0=0)]
    seen = find_zombies(runs, {"b"}, {}, at(0), GRACE).missing_since
    assert set(seen) == {"a", "c", "d"}
    verdict = find_zombies(runs, {"b"}, seen, at(5), GRACE)
    assert [z.run.run_id for z in verdict.zombies] == ["a", "c", "d"]


def test_zero_grace_still_needs_a_session_to_be_missing() -> None:
    verdict = find_zombies([run("x")], {"x"}, {"x": at(-60)}, at(0), timedelta(0))
    assert verdict.zombies == []


def test_the_failure_message_says_why() -> None:
    zombie = Zombie(run("dead"), at(0))
    message = zombie_failure_message(zombie, at(7))
    assert "No reminders database session" in message
    assert "'reminders-run:dead'" in message
    assert "for 7 min" in message
    assert "the run worker is gone" in message


def test_the_decision_module_does_not_import_dagster() -> None:
    tree = ast.parse(Path(zombies.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.split(".")[0] == "dagster" for name in imported), imported
