"""Observe the run lock from outside, as another session would."""

from __future__ import annotations

import psycopg

from reminders_pipeline.core.lock import LOCK_KEY


def lock_free(url: str) -> bool:
    """Whether a separate session could take the run lock now (it gives it back at once)."""
    with psycopg.connect(url, autocommit=True) as other:
        got = other.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()[0]
        if got:
            other.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEY)
        return got
