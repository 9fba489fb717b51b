"""Synthetic but realistic demo data, written set-based in batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from reminders_pipeline.db.connector import Database
from reminders_pipeline.errors import ConfigError

SEED_BATCH = 100_000
ASSIGNMENTS_PER_MENTOR = 12


@dataclass(frozen=True)
class SeedResult:
    mentors: int
    assignments: int


def seed(
    db: Database,
    *,
    assignments: int,
    due_fraction: float,
    today: date,
    default_interval_days: int,
    reset: bool = False,
    on_progress: Callable[[int], None] = lambda done: None,
) -> SeedResult:
    """Insert mentors, assignments and one contact activity per assignment.

    Roughly `due_fraction` of active assignments are due on `today`.
    """
    if assignments < 0:
        raise ConfigError(f"--assignments must be zero or more, got {assignments}")
    if not 0.0 <= due_fraction <= 1.0:
        raise ConfigError(f"--due-fraction must be between 0 and 1, got {due_fraction}")
    mentor_count = max(1, -(-assignments // ASSIGNMENTS_PER_MENTOR))
    with db.connection() as conn:
        if reset:
            conn.run("seed_reset")
            conn.run("seed_reset_delivery_cursor")
        if assignments == 0:
            return SeedResult(0, 0)
        mentors = conn.one("seed_mentors", count=mentor_count)
        conn.commit()
        done = 0
        while done < assignments:
            last = min(done + SEED_BATCH, assignments)
            conn.run(
                "seed_assignments_batch",
                first=done + 1,
                last=last,
                first_mentor=mentors["first_id"],
                mentors=mentors["count"],
                due_fraction=due_fraction,
                today=today,
                default_interval=default_interval_days,
            )
            conn.commit()
            on_progress(last - done)
            done = last
    return SeedResult(mentors=mentor_count, assignments=assignments)
