"""The project's advisory-lock keys, in one place below everything that takes them.

Keys use the two-int form (namespace, job) of the advisory-lock functions. The
namespace 0x52454D49 is "REMI" in ASCII: a value chosen to be recognisable in
pg_locks (classid = 1380273481) and unlikely to collide with other users of the
same database, which by convention take their own namespace (or use the one-bigint
form, a separate key space: objsubid 1 instead of 2). Jobs inside the namespace:
0 is schema migration, 1 the daily follow-up reminders run, 2 the dispatch
batches against manual corrections (transaction-level, so it never outlives a
batch or a correction; the run lock is session-level on its own key). Changing a value while
an old deployment still runs would let both run at once: never change it without
stopping every deployment first.

Who holds a key is read in one place too: the named query advisory_lock_holders
(db/queries.sql), through db/lock_holder.py.
"""

from __future__ import annotations

from typing import NamedTuple


class LockKey(NamedTuple):
    """A two-int advisory-lock key; a tuple, so `pg_advisory_lock(%s, %s)` takes it as is."""

    namespace: int
    job: int

    def params(self) -> dict[str, int]:
        """The key as the named queries take it: %(namespace)s, %(job)s."""
        return {"namespace": self.namespace, "job": self.job}


LOCK_NAMESPACE = 0x52454D49

# Concurrent `upgrade` calls (two deployments starting at once) wait for each other.
MIGRATION_LOCK = LockKey(LOCK_NAMESPACE, 0)
# The run lock (core/lock.py): one reminders run at a time.
LOCK_KEY = LockKey(LOCK_NAMESPACE, 1)
# Each dispatch batch holds it shared for its transaction, a manual correction of
# last_contact_date exclusive for its own: a correction waits for the batches in
# flight and counts what they inserted, and the next batch sees the correction
# (docs/decisions/contact-reset-guarantee.md, Decision 4).
DISPATCH_LOCK = LockKey(LOCK_NAMESPACE, 2)
