"""The project's advisory-lock keys, in one place below everything that takes them.

Keys use the two-int form (namespace, job) of the advisory-lock functions. The
namespace 0x52454D49 is "REMI" in ASCII: a value chosen to be recognisable in
pg_locks (classid = 1380273481) and unlikely to collide with other users of the
same database, which by convention take their own namespace (or use the one-bigint
form, a separate key space: objsubid 1 instead of 2). Jobs inside the namespace:
0 is schema migration, 1 the daily follow-up reminders run. Changing a value while
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
