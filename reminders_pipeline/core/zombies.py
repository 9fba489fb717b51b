"""Zombie runs: Dagster shows a reminders run in progress, but its run worker is gone.

With the default run launcher Dagster cannot ask whether a run worker is alive,
so a run left STARTED by a host crash would hold the one-at-a-time queue until
its max runtime. The reminders database has a better heartbeat: every live run
keeps a session named `reminders-run:<run id>` (db/lock_holder.py) from the moment it
opens the lock connection until it has released the lock, and a dead process's
session vanishes with it. This module decides, from run records and the set of
run ids that have such a session, which runs are zombies. No Dagster here: the
sensor in orchestration/sensors/zombie.py is a thin wrapper around find_zombies.

When a live run has no session (why a grace period, and why two observations):

- before the lock connection opens: the worker has emitted RUN_START but is
  still setting up resources (no connection there: ReminderRunResource only
  builds objects) and starting the first op, which opens it. Seconds, at most
  the 10 s connect timeout; longer only when the embedded PostgreSQL must start.
- after the lock is released (finished, failed, or skipped because another run
  holds the lock): the last ops and the run's end event follow within seconds.

A run is therefore judged a zombie only when BOTH hold:

1. it has been in its status (STARTED since its start time, STARTING since its
   launch) for at least `grace`: the window before the lock opens is covered;
2. the sensor saw no session for it on consecutive evaluations spanning at least
   `grace`, a session seen in between starting the count again: this uses only
   the sensor's own clock (no skew against the worker's host), and a run that
   released its lock would have ended long before.

A mistaken verdict could not double-send: a run that still opens its lock
session after being failed meets the advisory lock and the unique reminder key
like any other run. What a verdict cannot see: a session the server has not yet
noticed is dead (host power loss) keeps the run "alive" until PostgreSQL drops
it, about a minute with the server-side keepalives the lock session sets.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from reminders_pipeline.db.lock_holder import APPLICATION_PREFIX


@dataclass(frozen=True)
class RunSeen:
    """A run of the reminders job that Dagster shows in progress."""

    run_id: str
    status: str
    # When it entered that status: the start time of a STARTED run, the launch
    # time of a STARTING one. None when Dagster does not know (then rule 2 alone).
    since: datetime | None
    partition: str | None = None


@dataclass(frozen=True)
class Zombie:
    run: RunSeen
    missing_since: datetime  # first of the evaluations that found no session

    def missing_for(self, now: datetime) -> timedelta:
        return now - self.missing_since


@dataclass(frozen=True)
class ZombieVerdict:
    zombies: list[Zombie]
    # Runs without a session, not (yet) zombies: when each was first seen so.
    # The caller keeps it for the next evaluation (a sensor cursor).
    missing_since: dict[str, datetime]


def find_zombies(
    runs: Iterable[RunSeen],
    live_run_ids: Collection[str],
    missing_since: Mapping[str, datetime],
    now: datetime,
    grace: timedelta,
) -> ZombieVerdict:
    """Which runs in progress are zombies; see the module docstring for the two rules.

    missing_since is what the previous evaluation returned; runs no longer in
    progress drop out of it, and so do runs that have a session again.
    """
    zombies: list[Zombie] = []
    still_missing: dict[str, datetime] = {}
    for run in runs:
        if run.run_id in live_run_ids:
            continue  # alive: any earlier absence no longer counts
        first = missing_since.get(run.run_id, now)
        # A first sighting starts the count at `now`, so a zombie takes two evaluations.
        old_enough = run.since is None or now - run.since >= grace
        if old_enough and now - first >= grace:
            zombies.append(Zombie(run, first))
        else:
            still_missing[run.run_id] = first
    return ZombieVerdict(zombies, still_missing)


def zombie_failure_message(zombie: Zombie, now: datetime) -> str:
    """What the failed run says in Dagster (and in the run-failure alert)."""
    return (
        f"No reminders database session (application_name "
        f"'{APPLICATION_PREFIX}{zombie.run.run_id}') for this run for "
        f"{zombie.missing_for(now).total_seconds() / 60:.0f} min: the run worker is gone "
        "(host crash, or the process killed together with whatever would have reported it). "
        "Marked failed by zombie_run_sensor so the run queue moves on; the next run marks "
        "its reminder_runs row abandoned and creates any reminder it did not."
    )
