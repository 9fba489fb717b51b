-- Optional hardening (docs/operations.md, "Database roles"): only the project's
-- roles may take advisory locks in this database, so no other login can take
-- the run lock (1380273481, 1) or the dispatch lock (1380273481, 2).
--
-- PostgreSQL lets every role call the advisory-lock functions. A login that
-- takes the run lock makes runs skip (the skipped row names it, and the
-- stale-lock alert fires) but cannot be stopped by the grants of 0007. Only a
-- superuser may change who executes these pg_catalog functions, so this is not a
-- migration: run it once per reminders database as a superuser
-- (`psql -v ON_ERROR_STOP=1 -f ...`); running it again changes nothing.
-- Privileges on functions are per database: other databases keep the default.

-- Every advisory-lock function, both key forms, out of PUBLIC's reach.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure
             FROM pg_proc p
             WHERE p.pronamespace = 'pg_catalog'::regnamespace
               AND p.proname LIKE 'pg\_%advisory\_%' LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

-- What each role calls, with the two-int keys the project uses
-- (reminders_pipeline/db/lock_keys.py):
--   the job        the run lock (session level, or transaction level for the day
--                  as one call, 0011) and the dispatch lock, shared
--   the owner      migrations: the run lock and the migration lock
--   the admin API  a correction's dispatch lock, exclusive, transaction level
GRANT EXECUTE ON FUNCTION
    pg_catalog.pg_try_advisory_lock(integer, integer),
    pg_catalog.pg_advisory_unlock(integer, integer),
    pg_catalog.pg_try_advisory_xact_lock(integer, integer),
    pg_catalog.pg_advisory_xact_lock_shared(integer, integer)
    TO reminders_job;
GRANT EXECUTE ON FUNCTION
    pg_catalog.pg_try_advisory_lock(integer, integer),
    pg_catalog.pg_advisory_unlock(integer, integer),
    pg_catalog.pg_advisory_xact_lock(integer, integer)
    TO reminders_owner;
GRANT EXECUTE ON FUNCTION
    pg_catalog.pg_advisory_xact_lock(integer, integer)
    TO reminders_admin_api;
