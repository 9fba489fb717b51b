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
"""

LOCK_NAMESPACE = 0x52454D49
MIGRATION_JOB = 0
REMINDERS_RUN_JOB = 1

# Concurrent `upgrade` calls (two deployments starting at once) wait for each other.
MIGRATION_LOCK = (LOCK_NAMESPACE, MIGRATION_JOB)
# The run lock (core/lock.py): one reminders run at a time.
LOCK_KEY = (LOCK_NAMESPACE, REMINDERS_RUN_JOB)

DISPATCH_JOB = 2
# Each dispatch batch holds it shared for its transaction, a manual correction of
# last_contact_date exclusive for its own: a correction waits for the batches in
# flight and counts what they inserted, and the next batch sees the correction
# (docs/decisions/contact-reset-guarantee.md, Decision 4).
DISPATCH_LOCK = (LOCK_NAMESPACE, DISPATCH_JOB)
