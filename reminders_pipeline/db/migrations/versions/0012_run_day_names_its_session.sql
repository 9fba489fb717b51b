-- 0012: reminders_run_day() (0011) names its session while it holds the run lock.
--
-- Its 'running' row is visible to others only at commit, and its caller names its
-- own session (pg_cron, PostgREST, psql), so the stale-lock sensor, which knows a
-- run by its Dagster run, its 'running' row or its session's name, took a call
-- holding the lock past REMINDERS_STALE_LOCK_GRACE_S for a stale lock. Once it
-- holds the lock, the call now sets application_name for its transaction to
-- 'reminders-run-day' (what `reminders run` already calls its session), followed by
-- the caller's own name in brackets when it has another ('reminders-run-day
-- (pg_cron)'), visible to every role in pg_stat_activity; the sensor treats such a
-- holder as a run in progress while it is at work, and as stale when its transaction
-- is left idle (docs/decisions/lock-scope.md, "What changes in the guarantees").
--
-- The same function otherwise, word for word. CREATE OR REPLACE keeps its owner and
-- its grants (EXECUTE to reminders_job only, 0011); still not SECURITY DEFINER.

CREATE OR REPLACE FUNCTION reminders_run_day(as_of date DEFAULT NULL)
RETURNS TABLE (status text, run_id bigint, selected integer, created integer,
               already_existed integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
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
