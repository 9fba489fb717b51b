-- The reminders schema after migration 0012, as `python3 dev.py schema` dumps a
-- database migrated from empty. For reading: the migrations (db/migrations/versions)
-- are what changes a database; regenerate this file with each new one.

SET check_function_bodies = false;

CREATE FUNCTION public.activities_contacts_added() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    moved_ids   bigint[];
    moved_dates date[];
BEGIN
    -- One join, filtered before aggregating: only assignments whose date really
    -- moves are collected. The seed, whose activities match the assignments'
    -- dates already, finds none and stops here.
    SELECT array_agg(id ORDER BY id), array_agg(latest ORDER BY id)
    INTO moved_ids, moved_dates
    FROM (SELECT a.id, max(n.occurred_on) AS latest
          FROM added_activities n
          JOIN assignments a ON a.id = n.assignment_id
          WHERE n.kind = 'contact'
            AND n.occurred_on > a.last_contact_date
          GROUP BY a.id) moved;
    IF moved_ids IS NULL THEN
        RETURN NULL;
    END IF;

    -- Lock in id order, so concurrent registrations touching the same
    -- assignments queue instead of deadlocking.
    PERFORM 1
    FROM assignments
    WHERE id = ANY (moved_ids)
    ORDER BY id
    FOR NO KEY UPDATE;

    -- Re-checked on the locked, newest version: a concurrent later contact wins.
    UPDATE assignments a
    SET last_contact_date = m.latest,
        carried_for = CASE WHEN s.reminders > 0 THEN m.latest END,
        carried_reminders = nullif(s.reminders, 0),
        carried_last_sent_on = s.last_sent_on
    FROM unnest(moved_ids, moved_dates) AS m (id, latest)
    CROSS JOIN LATERAL reminders_sent_since(m.id, m.latest) AS s
    WHERE a.id = m.id
      AND a.last_contact_date < m.latest;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.activities_contacts_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    removed_ids bigint[];
    removed_on  date[];
    added_ids   bigint[];
    added_on    date[];
BEGIN
    -- Only rows whose assignment, date or kind changed matter.
    SELECT array_agg(o.assignment_id) FILTER (WHERE o.kind = 'contact'),
           array_agg(o.occurred_on)   FILTER (WHERE o.kind = 'contact'),
           array_agg(n.assignment_id) FILTER (WHERE n.kind = 'contact'),
           array_agg(n.occurred_on)   FILTER (WHERE n.kind = 'contact')
    INTO removed_ids, removed_on, added_ids, added_on
    FROM old_activities o
    JOIN new_activities n USING (id)
    WHERE (o.assignment_id, o.occurred_on, o.kind)
          IS DISTINCT FROM (n.assignment_id, n.occurred_on, n.kind);
    IF removed_ids IS NOT NULL OR added_ids IS NOT NULL THEN
        PERFORM apply_contact_changes(removed_ids, removed_on, added_ids, added_on);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.activities_contacts_removed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    removed_ids bigint[];
    removed_on  date[];
BEGIN
    SELECT array_agg(assignment_id), array_agg(occurred_on)
    INTO removed_ids, removed_on
    FROM old_activities
    WHERE kind = 'contact';
    IF removed_ids IS NOT NULL THEN
        PERFORM apply_contact_changes(removed_ids, removed_on, NULL, NULL);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.apply_contact_changes(removed_ids bigint[], removed_on date[], added_ids bigint[], added_on date[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- FOR UPDATE, not NO KEY UPDATE: it also waits for transactions still
    -- inserting activities of these assignments (their foreign-key check holds
    -- FOR KEY SHARE), so the recount below, a new statement with a new
    -- snapshot under READ COMMITTED, includes their rows.
    PERFORM 1
    FROM assignments
    WHERE id IN (SELECT unnest(removed_ids) UNION SELECT unnest(added_ids))
    ORDER BY id
    FOR UPDATE;

    WITH removed AS (
        SELECT DISTINCT assignment_id, occurred_on
        FROM unnest(removed_ids, removed_on) AS r (assignment_id, occurred_on)
    ), added AS (
        SELECT assignment_id, max(occurred_on) AS latest
        FROM unnest(added_ids, added_on) AS d (assignment_id, occurred_on)
        GROUP BY assignment_id
    ), target AS (
        SELECT a.id,
               CASE WHEN EXISTS (SELECT 1 FROM removed r
                                 WHERE r.assignment_id = a.id
                                   AND r.occurred_on = a.last_contact_date)
                    THEN coalesce((SELECT max(v.occurred_on) FROM activities v
                                   WHERE v.assignment_id = a.id AND v.kind = 'contact'),
                                  a.started_on)
                    ELSE greatest(a.last_contact_date,
                                  (SELECT d.latest FROM added d WHERE d.assignment_id = a.id))
               END AS new_value
        FROM assignments a
        WHERE a.id IN (SELECT assignment_id FROM removed UNION SELECT assignment_id FROM added)
    )
    UPDATE assignments a
    SET last_contact_date = t.new_value,
        carried_for = CASE WHEN s.reminders > 0 THEN t.new_value END,
        carried_reminders = nullif(s.reminders, 0),
        carried_last_sent_on = s.last_sent_on
    FROM target t
    CROSS JOIN LATERAL reminders_sent_since(t.id, t.new_value) AS s
    WHERE a.id = t.id
      AND a.last_contact_date IS DISTINCT FROM t.new_value;
END
$$;

CREATE FUNCTION public.deliveries_final_state_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
BEGIN
    RAISE EXCEPTION 'delivery % is %, a final state: it cannot become %',
        OLD.id, OLD.state, NEW.state
        USING ERRCODE = 'check_violation';
END
$$;

CREATE FUNCTION public.next_reminder_due_on(last_contact date, interval_days integer, as_of date, max_per_silence integer, carried_for date, carried integer, carried_last_sent_on date) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN n.s <= max_per_silence
                THEN greatest(last_contact + n.s * interval_days,
                              CASE WHEN carried_for = last_contact
                                   THEN carried_last_sent_on + interval_days END) END
    FROM (
        SELECT greatest(1,
                        CASE WHEN carried_for = last_contact THEN carried + 1 ELSE 1 END,
                        ceil((as_of - last_contact)::numeric / interval_days)::integer) AS s
    ) AS n
$$;

CREATE FUNCTION public.reminder_due(last_contact date, interval_days integer, as_of date, max_per_silence integer, carried_for date, carried integer, carried_last_sent_on date) RETURNS TABLE(sequence integer, due_on date)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT n.s, last_contact + n.s * interval_days
    FROM (SELECT least((as_of - last_contact) / interval_days, max_per_silence) AS s) AS n
    WHERE as_of - last_contact >= interval_days
      AND (carried_for IS DISTINCT FROM last_contact
           OR (n.s > carried
               AND (carried_last_sent_on IS NULL
                    OR as_of >= carried_last_sent_on + interval_days)))
$$;

CREATE FUNCTION public.reminders_run_day(as_of date DEFAULT NULL::date) RETURNS TABLE(status text, run_id bigint, selected integer, created integer, already_existed integer)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    tz text := public.reminders_setting('timezone', 'Europe/Oslo');
    interval_text text := public.reminders_setting('default_interval_days', '10');
    max_text text := public.reminders_setting('max_per_silence', '3');
    run_trigger text := public.reminders_setting('trigger', 'sql');
    default_interval integer;
    max_per_silence integer;
    today date;
    day date;
    holder record;
    reason text;
    row_id bigint;
    n_due integer;
    n_created integer;
BEGIN
    BEGIN
        default_interval := interval_text::integer;
        max_per_silence := max_text::integer;
    EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
        RAISE EXCEPTION 'reminders.default_interval_days (%) and reminders.max_per_silence (%) '
                        'must be whole numbers', interval_text, max_text
            USING ERRCODE = 'invalid_parameter_value';
    END;
    IF default_interval < 1 OR max_per_silence < 1 THEN
        RAISE EXCEPTION 'reminders.default_interval_days (%) and reminders.max_per_silence (%) '
                        'must be 1 or more', default_interval, max_per_silence
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The organisation's today, never the server's (as the Python run's settings.today()).
    BEGIN
        today := (clock_timestamp() AT TIME ZONE tz)::date;
    EXCEPTION WHEN invalid_parameter_value THEN
        RAISE EXCEPTION 'reminders.timezone % is not a timezone PostgreSQL knows', quote_literal(tz)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An IANA name such as Europe/Oslo.';
    END;
    day := coalesce(reminders_run_day.as_of, today);
    IF day > today THEN
        RAISE EXCEPTION 'as-of date % is in the future: today is % in %', day, today, tz
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF NOT pg_try_advisory_xact_lock(1380273481, 1) THEN
        -- Who holds it, as the batched run's run_lock_holder reads it.
        SELECT a.pid, a.application_name, a.backend_start AS since
        INTO holder
        FROM pg_locks l
        JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory'
          AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = 1380273481::bigint::oid
          AND l.objid = 1::oid
          AND l.objsubid = 2
        LIMIT 1;
        reason := 'another run holds the run lock';
        IF holder.pid IS NOT NULL THEN
            reason := reason || ' (pid ' || holder.pid
                || CASE WHEN starts_with(holder.application_name, 'reminders-run:')
                             AND holder.application_name <> 'reminders-run:unknown'
                        THEN ', run ' || substr(holder.application_name, 15)
                        WHEN holder.application_name <> ''
                        THEN ', ' || quote_literal(holder.application_name)
                        ELSE '' END
                || coalesce(', since ' || to_char(holder.since AT TIME ZONE 'UTC',
                                                  'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'), '')
                || ')';
        END IF;
        INSERT INTO public.reminder_runs (
            status, as_of, dagster_run_id, trigger, finished_at, error, lock_scope,
            blocked_by_pid, blocked_by_application_name, blocked_by_run_id, blocked_since
        )
        VALUES (
            'skipped', day, nullif(current_setting('reminders.run_id', true), ''), run_trigger,
            clock_timestamp(), reason, 'transaction',
            holder.pid, holder.application_name,
            CASE WHEN starts_with(holder.application_name, 'reminders-run:')
                      AND holder.application_name <> 'reminders-run:unknown'
                 THEN substr(holder.application_name, 15) END,
            holder.since
        )
        RETURNING id INTO row_id;
        RETURN QUERY SELECT 'skipped'::text, row_id, 0, 0, 0;
        RETURN;
    END IF;

    -- Names this session for the rest of the transaction, as long as the lock lives
    -- (transaction-local: a pooler's server connection is itself again at commit),
    -- keeping the caller's name in it. The stale-lock sensor knows the holder by it,
    -- since the 'running' row below is invisible until commit (0012).
    PERFORM set_config(
        'application_name',
        CASE WHEN starts_with(current_setting('application_name'), 'reminders-run-day')
                  OR current_setting('application_name') = ''
             THEN 'reminders-run-day'
             ELSE 'reminders-run-day (' || current_setting('application_name') || ')' END,
        true);

    -- Holding the lock, no 'running' row can be alive: mark them as the batched
    -- run does (queries.sql, mark_abandoned_runs).
    UPDATE public.reminder_runs
    SET status = 'abandoned',
        finished_at = clock_timestamp(),
        error = CASE
            WHEN pg_postmaster_start_time() > started_at THEN
                'the database server restarted at '
                || to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                || ' while this run held the lock; its lock session ended with the restart '
                || 'and the run recorded no outcome afterwards'
            ELSE
                'the run''s lock session' || coalesce(' (backend pid ' || lock_backend_pid || ')', '')
                || ' ended without the run recording an outcome: its process died or lost its '
                || 'database connection'
        END
    WHERE status = 'running';

    -- Visible to others only at commit, and then as 'success' (or not at all).
    INSERT INTO public.reminder_runs (status, as_of, dagster_run_id, trigger, lock_backend_pid, lock_scope)
    VALUES ('running', day, nullif(current_setting('reminders.run_id', true), ''), run_trigger,
            pg_backend_pid(), 'transaction')
    RETURNING id INTO row_id;

    -- Shared with the dispatch batches, exclusive against a manual correction
    -- (queries.sql, dispatch_correction_guard). Its own statement: the INSERT
    -- below, a later statement, sees every correction committed before it.
    PERFORM pg_advisory_xact_lock_shared(1380273481, 2);

    -- The batched run's dispatch_due_batch over every active assignment at once.
    WITH due AS (
        SELECT a.id AS assignment_id, a.mentor_id, a.last_contact_date, r.sequence, r.due_on
        FROM public.assignments AS a
        CROSS JOIN LATERAL public.reminder_due(
            a.last_contact_date, coalesce(a.reminder_interval_days, default_interval),
            day, max_per_silence,
            a.carried_for, a.carried_reminders, a.carried_last_sent_on
        ) AS r
        WHERE a.status = 'active'
    ), inserted AS (
        INSERT INTO public.notifications (
            assignment_id, mentor_id, kind, due_on, silence_started_on, sequence,
            channel, state, run_id, delivered_at
        )
        SELECT d.assignment_id, d.mentor_id, 'follow_up_reminder', d.due_on,
               d.last_contact_date, d.sequence, 'in_app', 'delivered', row_id, now()
        FROM due AS d
        WHERE NOT EXISTS (
            SELECT 1
            FROM public.notifications AS n
            WHERE n.assignment_id = d.assignment_id
              AND n.kind = 'follow_up_reminder'
              AND n.silence_started_on = d.last_contact_date
              AND n.sequence = d.sequence
        )
        ON CONFLICT ON CONSTRAINT notifications_natural_key DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM due), (SELECT count(*) FROM inserted)
    INTO n_due, n_created;

    UPDATE public.reminder_runs
    SET status = 'success',
        finished_at = clock_timestamp(),
        selected = n_due,
        created = n_created,
        already_existed = n_due - n_created
    WHERE id = row_id;

    RETURN QUERY SELECT 'success'::text, row_id, n_due, n_created, n_due - n_created;
END
$$;

CREATE FUNCTION public.reminders_sent_since(assignment bigint, since date) RETURNS TABLE(reminders integer, last_sent_on date)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT count(*)::integer, max(greatest(n.due_on, r.as_of))
    FROM public.notifications n
    LEFT JOIN public.reminder_runs r ON r.id = n.run_id
    WHERE n.assignment_id = assignment
      AND greatest(n.due_on, r.as_of) > since
$$;

CREATE FUNCTION public.reminders_setting(name text, fallback text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(nullif(current_setting('reminders.' || name, true), ''), fallback)
$$;

CREATE TABLE public.activities (
    id bigint NOT NULL,
    assignment_id bigint NOT NULL,
    kind text DEFAULT 'contact'::text NOT NULL,
    occurred_on date NOT NULL,
    registered_via text DEFAULT 'direct'::text NOT NULL,
    registered_by text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT activities_registered_via_check CHECK ((registered_via = ANY (ARRAY['direct'::text, 'proxy'::text, 'bulk'::text, 'coordinator_proxy'::text])))
);

ALTER TABLE public.activities ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.activities_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.admin_audit (
    id bigint NOT NULL,
    token_name text NOT NULL,
    action text DEFAULT 'correct_last_contact_date'::text NOT NULL,
    assignment_id bigint NOT NULL,
    old_value date,
    new_value date NOT NULL,
    reason text NOT NULL,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

ALTER TABLE public.admin_audit ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.admin_audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.admin_tokens (
    id bigint NOT NULL,
    name text NOT NULL,
    key_id text NOT NULL,
    token_hash bytea NOT NULL,
    scopes text[] NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    last_used_at timestamp with time zone,
    CONSTRAINT admin_tokens_name_check CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'::text)),
    CONSTRAINT admin_tokens_scopes_check CHECK (((cardinality(scopes) > 0) AND (scopes <@ ARRAY['read'::text, 'correct'::text])))
);

ALTER TABLE public.admin_tokens ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.admin_tokens_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.assignments (
    id bigint NOT NULL,
    mentor_id bigint NOT NULL,
    mentee_name text NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    started_on date NOT NULL,
    last_contact_date date NOT NULL,
    reminder_interval_days integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    carried_for date,
    carried_reminders integer,
    carried_last_sent_on date,
    CONSTRAINT assignments_carried_reminders_check CHECK ((carried_reminders >= 0)),
    CONSTRAINT assignments_reminder_interval_days_check CHECK ((reminder_interval_days > 0)),
    CONSTRAINT assignments_status_check CHECK ((status = ANY (ARRAY['active'::text, 'paused'::text, 'closed'::text])))
);

ALTER TABLE public.assignments ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.assignments_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.deliveries (
    id bigint NOT NULL,
    notification_id bigint NOT NULL,
    channel text NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    provider_response text,
    last_error text,
    lease_token uuid,
    CONSTRAINT deliveries_channel_check CHECK ((channel = ANY (ARRAY['email'::text, 'webhook'::text]))),
    CONSTRAINT deliveries_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'retry'::text, 'sent'::text, 'dead'::text, 'cancelled'::text])))
);

ALTER TABLE public.deliveries ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.deliveries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.delivery_cursor (
    only_row boolean DEFAULT true NOT NULL,
    last_notification_id bigint NOT NULL,
    CONSTRAINT delivery_cursor_only_row_check CHECK (only_row)
);

CREATE TABLE public.mentors (
    id bigint NOT NULL,
    name text NOT NULL,
    email text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    channels text[],
    language text,
    CONSTRAINT mentors_channels_check CHECK ((channels <@ ARRAY['in_app'::text, 'email'::text, 'webhook'::text])),
    CONSTRAINT mentors_language_check CHECK ((language = ANY (ARRAY['nb'::text, 'en'::text])))
);

ALTER TABLE public.mentors ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.mentors_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.notifications (
    id bigint NOT NULL,
    assignment_id bigint NOT NULL,
    mentor_id bigint NOT NULL,
    kind text NOT NULL,
    due_on date NOT NULL,
    silence_started_on date NOT NULL,
    sequence integer NOT NULL,
    channel text DEFAULT 'in_app'::text NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    run_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone,
    CONSTRAINT notifications_sequence_check CHECK ((sequence > 0)),
    CONSTRAINT notifications_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
);

ALTER TABLE public.notifications ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.notifications_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.reminder_runs (
    id bigint NOT NULL,
    status text NOT NULL,
    as_of date NOT NULL,
    dagster_run_id text,
    trigger text DEFAULT 'manual'::text NOT NULL,
    started_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    finished_at timestamp with time zone,
    selected integer,
    created integer,
    already_existed integer,
    error text,
    lock_backend_pid integer,
    blocked_by_pid integer,
    blocked_by_application_name text,
    blocked_by_run_id text,
    blocked_since timestamp with time zone,
    lock_scope text DEFAULT 'session'::text NOT NULL,
    CONSTRAINT reminder_runs_lock_scope_check CHECK ((lock_scope = ANY (ARRAY['session'::text, 'transaction'::text]))),
    CONSTRAINT reminder_runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'success'::text, 'skipped'::text, 'failed'::text, 'abandoned'::text])))
);

ALTER TABLE public.reminder_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.reminder_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.reminders_schema_version (
    version_num character varying(32) NOT NULL
);

ALTER TABLE ONLY public.activities
    ADD CONSTRAINT activities_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.admin_audit
    ADD CONSTRAINT admin_audit_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.admin_tokens
    ADD CONSTRAINT admin_tokens_key_id_key UNIQUE (key_id);

ALTER TABLE ONLY public.admin_tokens
    ADD CONSTRAINT admin_tokens_name_key UNIQUE (name);

ALTER TABLE ONLY public.admin_tokens
    ADD CONSTRAINT admin_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.assignments
    ADD CONSTRAINT assignments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_one_per_channel UNIQUE (notification_id, channel);

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.delivery_cursor
    ADD CONSTRAINT delivery_cursor_pkey PRIMARY KEY (only_row);

ALTER TABLE ONLY public.mentors
    ADD CONSTRAINT mentors_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_natural_key UNIQUE (assignment_id, kind, silence_started_on, sequence);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.reminder_runs
    ADD CONSTRAINT reminder_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.reminders_schema_version
    ADD CONSTRAINT reminders_schema_version_pkc PRIMARY KEY (version_num);

CREATE INDEX activities_assignment_idx ON public.activities USING btree (assignment_id, occurred_on DESC);

CREATE INDEX admin_audit_assignment_idx ON public.admin_audit USING btree (assignment_id, at DESC);

CREATE INDEX admin_audit_at_idx ON public.admin_audit USING btree (at DESC, id DESC);

CREATE INDEX assignments_active_id_idx ON public.assignments USING btree (id) WHERE (status = 'active'::text);

CREATE INDEX assignments_mentor_idx ON public.assignments USING btree (mentor_id);

CREATE INDEX deliveries_dead_idx ON public.deliveries USING btree (finished_at, id) WHERE (state = 'dead'::text);

CREATE INDEX deliveries_due_idx ON public.deliveries USING btree (channel, next_attempt_at, id) WHERE (state = ANY (ARRAY['pending'::text, 'retry'::text]));

CREATE INDEX mentors_channels_idx ON public.mentors USING btree (id) WHERE (channels IS NOT NULL);

CREATE INDEX notifications_created_brin ON public.notifications USING brin (created_at);

CREATE INDEX reminder_runs_dagster_run_idx ON public.reminder_runs USING btree (dagster_run_id);

CREATE INDEX reminder_runs_started_idx ON public.reminder_runs USING btree (started_at DESC, id DESC);

CREATE INDEX reminder_runs_status_idx ON public.reminder_runs USING btree (status) WHERE (status = 'running'::text);

CREATE TRIGGER activities_last_contact_delete AFTER DELETE ON public.activities REFERENCING OLD TABLE AS old_activities FOR EACH STATEMENT EXECUTE FUNCTION public.activities_contacts_removed();

CREATE TRIGGER activities_last_contact_insert AFTER INSERT ON public.activities REFERENCING NEW TABLE AS added_activities FOR EACH STATEMENT EXECUTE FUNCTION public.activities_contacts_added();

CREATE TRIGGER activities_last_contact_update AFTER UPDATE ON public.activities REFERENCING OLD TABLE AS old_activities NEW TABLE AS new_activities FOR EACH STATEMENT EXECUTE FUNCTION public.activities_contacts_changed();

CREATE TRIGGER deliveries_final_state BEFORE UPDATE OF state ON public.deliveries FOR EACH ROW WHEN (((old.state = ANY (ARRAY['sent'::text, 'dead'::text, 'cancelled'::text])) AND (new.state IS DISTINCT FROM old.state))) EXECUTE FUNCTION public.deliveries_final_state_guard();

ALTER TABLE ONLY public.activities
    ADD CONSTRAINT activities_assignment_id_fkey FOREIGN KEY (assignment_id) REFERENCES public.assignments(id);

ALTER TABLE ONLY public.admin_audit
    ADD CONSTRAINT admin_audit_assignment_id_fkey FOREIGN KEY (assignment_id) REFERENCES public.assignments(id);

ALTER TABLE ONLY public.admin_audit
    ADD CONSTRAINT admin_audit_token_name_fkey FOREIGN KEY (token_name) REFERENCES public.admin_tokens(name);

ALTER TABLE ONLY public.assignments
    ADD CONSTRAINT assignments_mentor_id_fkey FOREIGN KEY (mentor_id) REFERENCES public.mentors(id);

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_notification_id_fkey FOREIGN KEY (notification_id) REFERENCES public.notifications(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_assignment_id_fkey FOREIGN KEY (assignment_id) REFERENCES public.assignments(id);

GRANT CREATE ON SCHEMA public TO reminders_owner;

REVOKE ALL ON FUNCTION public.reminders_run_day(as_of date) FROM PUBLIC;
GRANT ALL ON FUNCTION public.reminders_run_day(as_of date) TO reminders_job;

REVOKE ALL ON FUNCTION public.reminders_sent_since(assignment bigint, since date) FROM PUBLIC;
GRANT ALL ON FUNCTION public.reminders_sent_since(assignment bigint, since date) TO reminders_contacts;
GRANT ALL ON FUNCTION public.reminders_sent_since(assignment bigint, since date) TO reminders_admin_api;
GRANT ALL ON FUNCTION public.reminders_sent_since(assignment bigint, since date) TO reminders_owner;

GRANT SELECT ON TABLE public.activities TO reminders_admin_api;
GRANT SELECT,INSERT ON TABLE public.activities TO reminders_contacts;

GRANT SELECT,INSERT ON TABLE public.admin_audit TO reminders_admin_api;

GRANT SELECT ON TABLE public.admin_tokens TO reminders_admin_api;

GRANT UPDATE(last_used_at) ON TABLE public.admin_tokens TO reminders_admin_api;

GRANT SELECT ON TABLE public.assignments TO reminders_job;
GRANT SELECT ON TABLE public.assignments TO reminders_admin_api;
GRANT SELECT ON TABLE public.assignments TO reminders_contacts;

GRANT UPDATE(last_contact_date) ON TABLE public.assignments TO reminders_admin_api;
GRANT UPDATE(last_contact_date) ON TABLE public.assignments TO reminders_contacts;

GRANT UPDATE(carried_for) ON TABLE public.assignments TO reminders_admin_api;
GRANT UPDATE(carried_for) ON TABLE public.assignments TO reminders_contacts;

GRANT UPDATE(carried_reminders) ON TABLE public.assignments TO reminders_admin_api;
GRANT UPDATE(carried_reminders) ON TABLE public.assignments TO reminders_contacts;

GRANT UPDATE(carried_last_sent_on) ON TABLE public.assignments TO reminders_admin_api;
GRANT UPDATE(carried_last_sent_on) ON TABLE public.assignments TO reminders_contacts;

GRANT SELECT,INSERT,UPDATE ON TABLE public.deliveries TO reminders_job;

GRANT SELECT,UPDATE ON TABLE public.delivery_cursor TO reminders_job;

GRANT SELECT ON TABLE public.mentors TO reminders_job;

GRANT SELECT,INSERT ON TABLE public.notifications TO reminders_job;
GRANT SELECT ON TABLE public.notifications TO reminders_admin_api;

GRANT SELECT(assignment_id) ON TABLE public.notifications TO reminders_definer;

GRANT SELECT(due_on) ON TABLE public.notifications TO reminders_definer;

GRANT SELECT(run_id) ON TABLE public.notifications TO reminders_definer;

GRANT SELECT ON SEQUENCE public.notifications_id_seq TO reminders_job;

GRANT SELECT,INSERT,UPDATE ON TABLE public.reminder_runs TO reminders_job;
GRANT SELECT ON TABLE public.reminder_runs TO reminders_admin_api;

GRANT SELECT(id) ON TABLE public.reminder_runs TO reminders_definer;

GRANT SELECT(as_of) ON TABLE public.reminder_runs TO reminders_definer;

GRANT SELECT ON TABLE public.reminders_schema_version TO reminders_job;
GRANT SELECT ON TABLE public.reminders_schema_version TO reminders_admin_api;
GRANT SELECT ON TABLE public.reminders_schema_version TO reminders_contacts;

INSERT INTO public.reminders_schema_version (version_num) VALUES ('0012');
