-- 0010: a SECURITY DEFINER function runs as a role that gains nothing; tokens
-- are minted and revoked by the owner only (docs/operations.md, "Database roles").
--
-- reminders_sent_since() (0005) is SECURITY DEFINER so that the contact triggers,
-- running as reminders_contacts, learn two numbers about reminders they may not
-- read. Owned by the superuser that ran 0005, it ran as a superuser over tables
-- that reminders_owner owns: a member of reminders_owner could rename
-- notifications, put a view of that name in its place whose WHERE calls a
-- function of its own, and have the next caller (itself, or any contact
-- registration) run that function as the superuser. Now:
--
--   reminders_definer   NOLOGIN, not a superuser, member of no role, owner of no
--                       table; SELECT on exactly the columns the function reads.
--                       A view slipped in its way runs as this role, which can
--                       do nothing but read those columns.
--   search_path         pinned to pg_catalog, pg_temp (the temporary schema
--                       last, never first); every table is schema-qualified, so
--                       no relation, function or operator of a caller's choosing
--                       is found by name.
--   EXECUTE             revoked from PUBLIC; granted to the roles whose
--                       statements call it: the contact triggers (contacts, and
--                       the owner's seed), the admin API's corrections.
--
-- tests/integration/test_definer_security.py runs the attacks and holds every
-- SECURITY DEFINER function of the schema to these rules.

------------------------------------------------------------------ the role

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'reminders_definer') THEN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'reminders_definer'
                   AND (rolsuper OR rolcanlogin OR rolcreaterole OR rolcreatedb
                        OR rolbypassrls OR rolreplication)) THEN
            RAISE EXCEPTION 'role reminders_definer may do more than read: it must be '
                            'NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION';
        END IF;
        RETURN;
    END IF;
    BEGIN
        CREATE ROLE reminders_definer NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB
            NOBYPASSRLS NOREPLICATION NOINHERIT;
    EXCEPTION
        -- Another database's migration created it in the meantime.
        WHEN duplicate_object OR unique_violation THEN
            NULL;
        WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role reminders_definer does not exist and % may not create roles',
                current_user
                USING HINT = 'As a user with CREATEROLE, once per server: '
                             'CREATE ROLE reminders_definer NOLOGIN; then migrate again.';
    END;
END
$$;

------------------------------------------------------------------ the function

-- 0005's body, every table qualified.
CREATE OR REPLACE FUNCTION public.reminders_sent_since(assignment bigint, since date)
RETURNS TABLE (reminders integer, last_sent_on date)
LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer, max(greatest(n.due_on, r.as_of))
    FROM public.notifications n
    LEFT JOIN public.reminder_runs r ON r.id = n.run_id
    WHERE n.assignment_id = assignment
      AND greatest(n.due_on, r.as_of) > since
$$;

REVOKE ALL ON FUNCTION public.reminders_sent_since(bigint, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.reminders_sent_since(bigint, date)
    TO reminders_contacts, reminders_admin_api, reminders_owner;

-- Exactly what the body reads.
GRANT SELECT (assignment_id, due_on, run_id) ON TABLE public.notifications TO reminders_definer;
GRANT SELECT (id, as_of) ON TABLE public.reminder_runs TO reminders_definer;

-- A superuser may give the function away. Anyone else (0007's "a user who owns
-- neither the database nor the roles", who may not act as reminders_definer)
-- leaves it with its creator, which is then not a superuser either: the
-- operator hands it over once, as docs/operations.md says.
DO $$
BEGIN
    ALTER FUNCTION public.reminders_sent_since(bigint, date) OWNER TO reminders_definer;
EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'reminders_sent_since() stays owned by %: it may not act as reminders_definer',
            current_user
            USING HINT = 'As a superuser: ALTER FUNCTION public.reminders_sent_since(bigint, date) '
                         'OWNER TO reminders_definer;';
END
$$;

------------------------------------------------------------------ the tokens

-- The API checks tokens and stamps their use; it neither mints nor revokes (nor
-- un-revokes) one: `reminders admin create-token` / `revoke-token` run as the
-- owner. Revoking UPDATE revokes its column grants too.
REVOKE INSERT, UPDATE, DELETE ON TABLE public.admin_tokens FROM reminders_admin_api;
GRANT UPDATE (last_used_at) ON TABLE public.admin_tokens TO reminders_admin_api;
