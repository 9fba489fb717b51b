-- 0007: least-privilege roles (docs/operations.md, "Database roles").
--
--   reminders_owner      owns the reminders tables; the migrations run as it
--   reminders_job        the daily job: reads assignments, writes reminders and
--                        the run log, nothing else
--   reminders_admin_api  the admin API and its token commands: reads, corrects,
--                        audits; the only one that reads admin_tokens
--
-- They are group roles (NOLOGIN): an operator grants one to each login. Roles
-- belong to the server, not to a database, so every reminders database on one
-- server shares them; the names are fixed for that reason (a database made from
-- a template, as the tests do, keeps grants that name these very roles). Each
-- database grants only on its own tables, and this file is safe to run again and
-- at once in several databases.

------------------------------------------------------------------ the roles

DO $$
DECLARE
    wanted text;
BEGIN
    FOREACH wanted IN ARRAY ARRAY['reminders_owner', 'reminders_job', 'reminders_admin_api'] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = wanted);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted);
        EXCEPTION
            -- Another database's migration created it in the meantime.
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % does not exist and % may not create roles', wanted,
                    current_user
                    USING HINT = format('As a user with CREATEROLE, once per server: '
                                        'CREATE ROLE %I NOLOGIN; then migrate again.', wanted);
        END;
    END LOOP;
END
$$;

------------------------------------------------------------------ the grants

-- Every grant, in one list: one row per role and object. A new table gets its
-- rows here (in a later migration, the same loop). Nothing is granted to PUBLIC;
-- the functions of 0004 are executable by anyone, as PostgreSQL's default.
-- Identity columns need no grant on their sequences.
CREATE TEMPORARY TABLE reminders_grants (role text, privileges text, object text) ON COMMIT DROP;
INSERT INTO reminders_grants VALUES
    ('reminders_job',       'SELECT',                                   'reminders_schema_version'),
    ('reminders_job',       'SELECT',                                   'assignments'),
    ('reminders_job',       'SELECT',                                   'mentors'),
    ('reminders_job',       'SELECT, INSERT, UPDATE',                   'notifications'),
    ('reminders_job',       'SELECT, INSERT, UPDATE',                   'reminder_runs'),
    -- The deliverer (docs/decisions/delivery-outbox.md): the outbox, its cursor, and
    -- the reminders' id sequence it reads to know how far dispatch has gone.
    ('reminders_job',       'SELECT, INSERT, UPDATE',                   'deliveries'),
    ('reminders_job',       'SELECT, UPDATE',                           'delivery_cursor'),
    ('reminders_job',       'SELECT',                                   'notifications_id_seq'),
    ('reminders_admin_api', 'SELECT',                                   'reminders_schema_version'),
    -- A correction also writes what it carries into the new silence (0005).
    ('reminders_admin_api', 'SELECT, UPDATE (last_contact_date, carried_for, carried_reminders, carried_last_sent_on)', 'assignments'),
    ('reminders_admin_api', 'SELECT',                                   'activities'),
    ('reminders_admin_api', 'SELECT',                                   'notifications'),
    ('reminders_admin_api', 'SELECT',                                   'reminder_runs'),
    ('reminders_admin_api', 'SELECT, INSERT',                           'admin_audit'),
    ('reminders_admin_api', 'SELECT, INSERT, UPDATE (last_used_at, revoked_at)', 'admin_tokens');

DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM reminders_grants LOOP
        EXECUTE format('GRANT %s ON TABLE %I TO %I', g.privileges, g.object, g.role);
    END LOOP;
END
$$;

------------------------------------------------------------------ the owner

-- The tables pass to reminders_owner when this user may give them away: a
-- superuser, or a member of reminders_owner that owns the schema (the owner needs
-- CREATE on it for later migrations). Otherwise they stay with the user that
-- created them, which is then the migrations' owner; nothing else changes.
DO $$
DECLARE
    t text;
BEGIN
    IF NOT (pg_has_role(current_user, 'reminders_owner', 'MEMBER')
            OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)) THEN
        RAISE NOTICE 'tables stay owned by %: it is not a member of reminders_owner', current_user;
        RETURN;
    END IF;
    BEGIN
        IF NOT has_schema_privilege('reminders_owner', 'public', 'CREATE') THEN
            GRANT CREATE ON SCHEMA public TO reminders_owner;
        END IF;
        FOR t IN SELECT c.relname
                 FROM pg_class c
                 WHERE c.relnamespace = 'public'::regnamespace
                   AND c.relkind = 'r'
                   AND c.relname IN (SELECT object FROM reminders_grants)
                   AND pg_get_userbyid(c.relowner) = current_user LOOP
            EXECUTE format('ALTER TABLE %I OWNER TO reminders_owner', t);
        END LOOP;
    EXCEPTION WHEN insufficient_privilege THEN
        -- A database (or schema) this user does not own: all or none of the tables move.
        RAISE NOTICE 'tables stay owned by %: %', current_user, SQLERRM;
    END;
END
$$;

DROP TABLE reminders_grants;
