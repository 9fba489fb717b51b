-- Every SQL statement the services run, by name. Parameters are psycopg
-- %(name)s placeholders; a literal percent sign is written %%.

------------------------------------------------------------------ run lock

-- name: try_run_lock
SELECT pg_try_advisory_lock(%(namespace)s, %(job)s) AS acquired;

-- name: release_run_lock
SELECT pg_advisory_unlock(%(namespace)s, %(job)s) AS released;

-- name: take_migration_lock
-- Transaction-level: held until the migration's transaction ends.
SELECT pg_advisory_xact_lock(%(namespace)s, %(job)s);

-- name: advisory_lock_holders
-- The one reading of pg_locks for a lock key (db/lock_keys.LockKey): the
-- sessions of this database holding it, this one marked `mine`. Who holds the
-- run lock, whether this session does, whether any does, all come from here
-- (db/lock_holder.py). The two-int form shows as classid/objid with objsubid 2.
-- pg_locks keeps no time of acquisition: state_change is the nearest true bound
-- (an idle holder took the lock at or before it; see LockHolder.state_change).
SELECT l.pid,
       l.pid = pg_backend_pid() AS mine,
       a.application_name,
       a.backend_start AS since,
       a.state_change,
       a.client_addr::text AS client_addr,
       a.state
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %(namespace)s::bigint::oid
  AND l.objid = %(job)s::bigint::oid
  AND l.objsubid = 2
ORDER BY l.pid;

------------------------------------------------------------------ execution log

-- name: mark_abandoned_runs
-- Only called while holding the run lock: no other 'running' row can be alive,
-- and its lock session is certainly gone. The reason says what is known: a
-- server restart after the run started ended every session, so that is the
-- cause; otherwise the session ended without the run recording an outcome (the
-- process died, or its connection was cut and it could not log afterwards).
UPDATE reminder_runs
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
WHERE status = 'running'
RETURNING id, dagster_run_id, started_at, error;

-- name: insert_running_run
INSERT INTO reminder_runs (status, as_of, dagster_run_id, trigger, lock_backend_pid)
VALUES ('running', %(as_of)s, %(dagster_run_id)s, %(trigger)s, %(lock_backend_pid)s)
RETURNING id, started_at;

-- name: insert_skipped_run
INSERT INTO reminder_runs (
    status, as_of, dagster_run_id, trigger, finished_at, error,
    blocked_by_pid, blocked_by_application_name, blocked_by_run_id, blocked_since
)
VALUES (
    'skipped', %(as_of)s, %(dagster_run_id)s, %(trigger)s, clock_timestamp(), %(reason)s,
    %(blocked_by_pid)s, %(blocked_by_application_name)s, %(blocked_by_run_id)s, %(blocked_since)s
)
RETURNING id, started_at;

-- name: finish_run_success
-- Runs on the lock's own session, in a transaction that has just seen that very
-- session hold the run lock (core/runlog.py): a run that lost its lock (and with
-- it its session) can never record success. Matches nothing when another run
-- marked this one abandoned; the caller then records it failed instead.
UPDATE reminder_runs
SET status = 'success',
    finished_at = clock_timestamp(),
    selected = %(selected)s,
    created = %(created)s,
    already_existed = %(already_existed)s
WHERE id = %(id)s AND status = 'running'
RETURNING id;

-- name: add_run_batch_counts
-- In the same transaction as the batch's INSERT, on the lock session: the counts
-- of every committed batch are on the row of the run that did the work, whatever
-- becomes of that run afterwards (failed, abandoned).
UPDATE reminder_runs
SET selected = coalesce(selected, 0) + %(selected)s,
    created = coalesce(created, 0) + %(created)s,
    already_existed = coalesce(already_existed, 0) + %(already_existed)s
WHERE id = %(id)s;

-- name: insert_failed_run
-- An invocation that failed before it could write its 'running' row (the lock
-- connection refused, say) is logged all the same.
INSERT INTO reminder_runs (status, as_of, dagster_run_id, trigger, finished_at, error)
VALUES ('failed', %(as_of)s, %(dagster_run_id)s, %(trigger)s, clock_timestamp(), %(error)s)
RETURNING id;

-- name: finish_run_failed
-- Counts already on the row (committed batches) are the truth and stay; selected
-- is at least what the run's selection found due (batches may not have reached it).
UPDATE reminder_runs
SET status = 'failed',
    finished_at = clock_timestamp(),
    selected = greatest(selected, %(selected)s),
    created = coalesce(created, %(created)s),
    already_existed = coalesce(already_existed, %(already_existed)s),
    error = %(error)s
-- 'abandoned': another run took over after this one lost its lock session; the
-- real outcome replaces that guess.
WHERE id = %(id)s AND status IN ('running', 'abandoned')
RETURNING id;

-- name: list_runs
SELECT id, status, as_of, dagster_run_id, trigger, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::float8 AS duration_s,
       selected, created, already_existed, error,
       blocked_by_pid, blocked_by_application_name, blocked_by_run_id, blocked_since,
       lock_scope
FROM reminder_runs
WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY started_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: runs_for_dagster_run
SELECT id, status, as_of, dagster_run_id, trigger, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::float8 AS duration_s,
       selected, created, already_existed, error,
       blocked_by_pid, blocked_by_application_name, blocked_by_run_id, blocked_since,
       lock_scope
FROM reminder_runs
WHERE dagster_run_id = %(dagster_run_id)s
ORDER BY id DESC;

------------------------------------------------------------------ the day as one SQL call
-- reminders_run_day() (migration 0011) under the transaction-level lock, for a
-- connection through a transaction-mode pooler (core/run_day.py). The three
-- statements run in one transaction: the settings are the caller's for it alone.

-- name: run_day_settings
-- The Python run's settings, for this transaction only; and the server checks
-- the client's socket while the call runs, so a killed caller's transaction (and
-- lock) ends within a second instead of when the statement does.
SELECT set_config('reminders.timezone', %(timezone)s, true),
       set_config('reminders.default_interval_days', %(default_interval)s, true),
       set_config('reminders.max_per_silence', %(max_per_silence)s, true),
       set_config('reminders.trigger', %(trigger)s, true),
       set_config('client_connection_check_interval', '1000', true);

-- name: run_day
SELECT status, run_id, selected, created, already_existed
FROM reminders_run_day(%(as_of)s::date);

-- name: run_by_id
SELECT id, status, as_of, dagster_run_id, trigger, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::float8 AS duration_s,
       selected, created, already_existed, error,
       blocked_by_pid, blocked_by_application_name, blocked_by_run_id, blocked_since,
       lock_scope
FROM reminder_runs
WHERE id = %(id)s;

-- name: insert_failed_run_in_transaction
-- A call of reminders_run_day() that failed rolled back its own row: logged here.
INSERT INTO reminder_runs (status, as_of, dagster_run_id, trigger, finished_at, error, lock_scope)
VALUES ('failed', %(as_of)s, NULL, %(trigger)s, clock_timestamp(), %(error)s, 'transaction')
RETURNING id;

------------------------------------------------------------------ due reminders

-- name: count_due_assignments
-- A summary of what a run for as_of will find; dispatch recounts batch by batch.
-- The due rule is reminder_due() (migrations 0004, 0005), with the reminders a
-- correction carried into the current silence.
SELECT count(r.sequence) AS due,
       count(*) AS active
FROM assignments a
LEFT JOIN LATERAL reminder_due(
    a.last_contact_date, coalesce(a.reminder_interval_days, %(default_interval)s),
    %(as_of)s::date, %(max_per_silence)s,
    a.carried_for, a.carried_reminders, a.carried_last_sent_on
) AS r ON true
WHERE a.status = 'active';

-- name: dispatch_plan_guard
-- In each batch's transaction, before dispatch_due_batch. The batch's anti-join
-- must probe the natural key's index: on a table analyzed while empty (a new
-- deployment) the planner prefers a sequential scan of notifications, repeated
-- for every due row over the pages the statement itself is filling, which is
-- quadratic (6.9 s instead of 0.4 s for a 30,000-row batch). Every access path
-- of the batch is an index anyway.
SET LOCAL enable_seqscan = off;

-- name: dispatch_correction_guard
-- In each batch's transaction, in its own statement before dispatch_due_batch:
-- shared with other batches, exclusive against a correction of last_contact_date
-- (admin_correction_guard). A correction waits for the batches in flight, whose
-- INSERT snapshot may predate it, and counts what they inserted; the batch's
-- INSERT, a later statement, sees every correction committed before the lock was
-- granted. Transaction-level: released at the batch's commit or rollback.
SELECT pg_advisory_xact_lock_shared(%(namespace)s, %(job)s);

-- name: dispatch_due_batch
-- One batch of active assignments in id order (keyset pagination); the due rule
-- is reminder_due() (migrations 0004, 0005), with what a correction carried.
-- Notes at the end of this statement.
WITH bounds AS (
    SELECT max(id) AS last_id, count(*) AS scanned
    FROM (SELECT id
          FROM assignments
          WHERE status = 'active' AND id > %(after_id)s
          ORDER BY id
          LIMIT %(batch_size)s) AS b
), due AS (
    SELECT a.id AS assignment_id,
           a.mentor_id,
           a.last_contact_date,
           r.sequence,
           r.due_on
    FROM assignments AS a
    CROSS JOIN LATERAL reminder_due(
        a.last_contact_date, coalesce(a.reminder_interval_days, %(default_interval)s),
        %(as_of)s::date, %(max_per_silence)s,
        a.carried_for, a.carried_reminders, a.carried_last_sent_on
    ) AS r
    WHERE a.status = 'active'
      AND a.id > %(after_id)s
      AND a.id <= (SELECT last_id FROM bounds)
), inserted AS (
    INSERT INTO notifications (
        assignment_id, mentor_id, kind, due_on, silence_started_on, sequence,
        channel, state, run_id, delivered_at
    )
    SELECT assignment_id, mentor_id, %(kind)s,
           due_on,
           last_contact_date, sequence,
           %(channel)s, %(state)s, %(run_id)s,
           CASE WHEN %(state)s = 'delivered' THEN now() END
    FROM due AS d
    -- probe: begin (left out while no reminder exists beyond after_id: core/dispatch.py)
    WHERE NOT EXISTS (
        SELECT 1
        FROM notifications AS n
        WHERE n.assignment_id = d.assignment_id
          AND n.kind = %(kind)s
          AND n.silence_started_on = d.last_contact_date
          AND n.sequence = d.sequence
    )
    -- probe: end
    ON CONFLICT ON CONSTRAINT notifications_natural_key DO NOTHING
    RETURNING 1
)
SELECT b.last_id,
       b.scanned,
       (SELECT count(*) FROM due) AS due,
       (SELECT count(*) FROM inserted) AS created
FROM bounds AS b;
-- `bounds` finds the batch's last id on the partial index alone (index-only);
-- the due assignments are then read once, in place, without a materialized copy
-- of the batch. Each gets the latest reminder due on or before as_of: its number
-- in the silence that began at the last contact, and its due date. Reminders a
-- correction carried into this silence (columns of the same row: no extra
-- lookup) count toward the cap and the numbering, and the next one waits an
-- interval after the latest. A rerun finds most reminders there already: the
-- NOT EXISTS probe skips them before the insert evaluates defaults (the
-- identity's nextval) and speculates; ON CONFLICT on the natural key
-- (assignment, kind, silence, number) still makes a concurrent copy a no-op.
-- While no reminder exists for any assignment after after_id
-- (dispatch_reminders_beyond: a first run) the probe could find nothing, and
-- the dispatch sends the statement without the lines between the probe markers:
-- one index probe less per due row (a tenth of a first run's time at 1M).
-- (The INSERT stays within the first 1 kB of the text: tests find a blocked run
-- by it in pg_stat_activity.query, which track_activity_query_size truncates.)

-- name: dispatch_reminders_beyond
-- Whether any reminder exists for an assignment after after_id: one descent of
-- the natural key's index (its leading column). False on a first run, and for
-- every batch after the last assignment that has reminders.
SELECT EXISTS (
    SELECT 1 FROM notifications WHERE assignment_id > %(after_id)s
) AS found;

-- name: prune_reminders_batch
-- Up to batch_size reminders created before `before`, oldest first, whose
-- silence is over (the assignment's last contact is later than the silence's
-- start): the natural key of a silence still running must stay, or the next run
-- would create its reminders again. 'pending' reminders are not delivered yet
-- and stay; so do reminders the deliverer has not turned into deliveries yet
-- (past its cursor) and those with a delivery still to send (pending or retry);
-- deliveries that are done go with their reminder (ON DELETE CASCADE).
WITH doomed AS (
    SELECT n.id
    FROM notifications n
    JOIN assignments a ON a.id = n.assignment_id
    WHERE n.created_at < %(before)s
      AND n.state <> 'pending'
      AND n.silence_started_on < a.last_contact_date
      AND n.id <= (SELECT last_notification_id FROM delivery_cursor)
      AND NOT EXISTS (SELECT 1 FROM deliveries d
                      WHERE d.notification_id = n.id AND d.state IN ('pending', 'retry'))
    -- No ORDER BY: the oldest rows lie first in the heap, a scan meets them first.
    LIMIT %(batch_size)s
), deleted AS (
    DELETE FROM notifications n
    USING doomed d
    WHERE n.id = d.id
    RETURNING 1
)
SELECT count(*) AS deleted FROM deleted;

------------------------------------------------------------------ demo data

-- name: seed_reset
TRUNCATE notifications, activities, assignments, mentors, reminder_runs RESTART IDENTITY CASCADE;

-- name: seed_reset_delivery_cursor
-- notifications ids start again at 1: so does the deliverer's cursor (migration 0006).
UPDATE delivery_cursor SET last_notification_id = 0;

-- name: seed_mentors
WITH inserted AS (
    INSERT INTO mentors (name, email)
    SELECT 'Mentor ' || g, 'mentor' || g || '@example.org'
    FROM generate_series(1, %(count)s::int) AS g
    RETURNING id
)
SELECT min(id) AS first_id, count(*) AS count FROM inserted;

-- name: seed_assignments_batch
-- Realistic spread: most assignments active, some paused or closed; some with
-- their own interval; a share due_fraction of active ones past their interval.
-- The status goes by position (88 of each 100 active, the first ones among them), so a
-- small seed is predictable: the README's one assignment is active, hence due.
WITH rows AS (
    SELECT g,
           (g - 1) %% 100 / 100.0 AS r_status,
           random() AS r_due,
           random() AS r_days,
           random() AS r_interval,
           random() AS r_start
    FROM generate_series(%(first)s::int, %(last)s::int) AS g
), shaped AS (
    SELECT g,
           CASE WHEN r_status < 0.88 THEN 'active'
                WHEN r_status < 0.95 THEN 'paused'
                ELSE 'closed' END AS status,
           CASE WHEN r_interval < 0.8 THEN NULL
                WHEN r_interval < 0.9 THEN 7
                ELSE 14 END AS interval_override,
           r_due, r_days, r_start
    FROM rows
), dated AS (
    SELECT g, status, interval_override,
           CASE WHEN r_due < %(due_fraction)s
                -- due: silent for one to three intervals
                THEN %(today)s::date - coalesce(interval_override, %(default_interval)s)
                     - floor(r_days * 2 * coalesce(interval_override, %(default_interval)s))::int
                -- not due: contact within the interval
                ELSE %(today)s::date
                     - floor(r_days * (coalesce(interval_override, %(default_interval)s) - 1))::int
           END AS last_contact_date,
           r_start
    FROM shaped
), inserted AS (
    INSERT INTO assignments (mentor_id, mentee_name, status, started_on, last_contact_date,
                             reminder_interval_days)
    SELECT %(first_mentor)s + (g %% %(mentors)s),
           'Person ' || g,
           status,
           last_contact_date - floor(r_start * 365)::int,
           last_contact_date,
           interval_override
    FROM dated
    ORDER BY g
    RETURNING id, last_contact_date
)
INSERT INTO activities (assignment_id, kind, occurred_on, registered_via, registered_by)
SELECT id, 'contact', last_contact_date, 'direct', 'seed'
FROM inserted;

------------------------------------------------------------------ operations (Dagster schedule, sensors)

-- name: running_runs_started_before
-- 'running' rows older than a threshold: long runs, also those started outside Dagster.
SELECT id, dagster_run_id, as_of, trigger, started_at, lock_backend_pid
FROM reminder_runs
WHERE status = 'running'
  AND started_at <= clock_timestamp() - make_interval(secs => %(older_than_s)s)
ORDER BY id;

-- name: live_run_sessions
-- Dagster run ids of every session named reminders-run:<run id> (db/lock_holder.py): a run
-- opens it before taking the lock and keeps it until the lock is released, so it
-- is the run worker's heartbeat, between steps too (not only while holding the
-- lock). All databases of the server count: any sign of life keeps a run alive.
-- application_name is visible to every role, even for other users' sessions.
SELECT DISTINCT substr(application_name, length(%(prefix)s) + 1) AS run_id
FROM pg_stat_activity
WHERE starts_with(application_name, %(prefix)s)
ORDER BY run_id;

------------------------------------------------------------------ activities and admin API
-- Contact registrations (activities.py) and the admin API (admin/). The
-- triggers of migration 0002 keep assignments.last_contact_date in step with
-- activities; nothing here repeats that rule.

-- name: register_contacts
-- Every registration path, one set-based statement. All or nothing: when any
-- row is refused, nothing is inserted and the refusals come back (the first 20,
-- in input order) with their total count.
WITH input AS (
    SELECT t.assignment_id, t.occurred_on, t.position
    FROM unnest(%(assignment_ids)s::bigint[], %(occurred_on)s::date[])
         WITH ORDINALITY AS t (assignment_id, occurred_on, position)
), target AS (
    -- Locked in id order: registrations (and closings) of the same assignments
    -- queue instead of deadlocking, and a concurrent close cannot slip in.
    SELECT a.id, a.mentor_id, a.status, a.started_on
    FROM assignments a
    WHERE a.id IN (SELECT assignment_id FROM input)
    ORDER BY a.id
    FOR NO KEY UPDATE
), checked AS (
    SELECT i.position, i.assignment_id, i.occurred_on,
           CASE WHEN i.assignment_id IS NULL OR i.occurred_on IS NULL THEN 'missing_value'
                WHEN t.id IS NULL THEN 'unknown_assignment'
                WHEN t.status = 'closed' THEN 'closed_assignment'
                WHEN %(mentor_id)s::bigint IS NOT NULL
                     AND t.mentor_id <> %(mentor_id)s::bigint THEN 'not_the_mentor'
                WHEN i.occurred_on > %(today)s::date THEN 'future_date'
                WHEN i.occurred_on < t.started_on THEN 'before_assignment_start'
           END AS problem
    FROM input i
    LEFT JOIN target t ON t.id = i.assignment_id
), inserted AS (
    INSERT INTO activities (assignment_id, kind, occurred_on, registered_via, registered_by)
    SELECT assignment_id, 'contact', occurred_on, %(registered_via)s, %(registered_by)s
    FROM input
    WHERE NOT EXISTS (SELECT 1 FROM checked WHERE problem IS NOT NULL)
    ORDER BY position
    RETURNING id
)
SELECT (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM inserted) AS activity_ids,
       (SELECT count(*) FROM checked WHERE problem IS NOT NULL) AS refused,
       (SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.position), '[]'::jsonb)
        FROM (SELECT position, assignment_id, occurred_on, problem
              FROM checked
              WHERE problem IS NOT NULL
              ORDER BY position
              LIMIT 20) p) AS problems;

-- name: admin_correction_guard
-- First statement of a correction, before admin_lock_assignment: waits for the
-- dispatch batches in flight (dispatch_correction_guard), so the count in
-- admin_correct_last_contact_date, a later statement, sees what they inserted,
-- and keeps new batches out until the correction commits. Before the row lock,
-- or a batch holding the shared lock and waiting for the row (its foreign-key
-- check) would deadlock with it. The API's lock_timeout bounds the wait.
SELECT pg_advisory_xact_lock(%(namespace)s, %(job)s);

-- name: admin_lock_assignment
-- FOR UPDATE (not NO KEY UPDATE) also waits for transactions still inserting
-- activities of this assignment, so old_value in the audit is what they left.
SELECT id, status, started_on, last_contact_date
FROM assignments
WHERE id = %(id)s
FOR UPDATE;

-- name: admin_correct_last_contact_date
-- The correction and its audit row, written together. The reminders sent since
-- the corrected date (a reminder's day: its run's as_of, or its due date when it
-- has no run) are carried into the silence the correction starts: they count
-- toward its cap and numbering, and the next one waits an interval after the
-- latest (docs/decisions/contact-reset-guarantee.md, Decision 4).
-- reminders_sent_since (migration 0005) is the contact triggers' count too.
WITH sent AS (
    SELECT reminders, last_sent_on
    FROM reminders_sent_since(%(assignment_id)s, %(new_value)s)
), updated AS (
    UPDATE assignments
    SET last_contact_date = %(new_value)s,
        carried_for = %(new_value)s,
        carried_reminders = sent.reminders,
        carried_last_sent_on = sent.last_sent_on
    FROM sent
    WHERE id = %(assignment_id)s
    RETURNING id
)
INSERT INTO admin_audit (token_name, assignment_id, old_value, new_value, reason)
SELECT %(token_name)s, id, %(old_value)s, %(new_value)s, %(reason)s
FROM updated
RETURNING id, at;

-- name: admin_assignment
-- With the due rule (migrations 0004, 0005) applied on today, counting what a
-- correction carried: the reminder due on or before today and the next one from
-- today and from tomorrow (for when today's reminder exists already). NULL for
-- assignments that are not active.
SELECT a.id, a.mentor_id, a.status, a.started_on, a.last_contact_date,
       a.reminder_interval_days, a.created_at,
       %(today)s::date AS today,
       r.sequence AS current_sequence,
       r.due_on AS current_due_on,
       CASE WHEN a.status = 'active' THEN next_reminder_due_on(
           a.last_contact_date, i.days, %(today)s::date, %(max_per_silence)s,
           a.carried_for, a.carried_reminders, a.carried_last_sent_on
       ) END AS next_due_on,
       CASE WHEN a.status = 'active' THEN next_reminder_due_on(
           a.last_contact_date, i.days, %(today)s::date + 1, %(max_per_silence)s,
           a.carried_for, a.carried_reminders, a.carried_last_sent_on
       ) END AS next_due_after_today
FROM assignments AS a
CROSS JOIN LATERAL (
    SELECT coalesce(a.reminder_interval_days, %(default_interval)s) AS days
) AS i
LEFT JOIN LATERAL reminder_due(
    a.last_contact_date, i.days, %(today)s::date, %(max_per_silence)s,
    a.carried_for, a.carried_reminders, a.carried_last_sent_on
) AS r ON a.status = 'active'
WHERE a.id = %(id)s;

-- name: admin_recent_reminders
SELECT id, kind, due_on, silence_started_on, sequence, channel, state, attempts,
       created_at, delivered_at
FROM notifications
WHERE assignment_id = %(id)s
ORDER BY due_on DESC, id DESC
LIMIT %(limit)s;

-- name: admin_recent_activities
SELECT id, kind, occurred_on, registered_via, registered_by, created_at
FROM activities
WHERE assignment_id = %(id)s
ORDER BY occurred_on DESC, id DESC
LIMIT %(limit)s;

-- name: admin_list_audit
SELECT id, token_name, action, assignment_id, old_value, new_value, reason, at
FROM admin_audit
WHERE (%(assignment_id)s::bigint IS NULL OR assignment_id = %(assignment_id)s::bigint)
ORDER BY at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: admin_insert_token
INSERT INTO admin_tokens (name, key_id, token_hash, scopes)
VALUES (%(token_name)s, %(key_id)s, %(token_hash)s, %(scopes)s::text[])
ON CONFLICT (name) DO NOTHING
RETURNING id, created_at;

-- name: admin_token_by_key
SELECT id, name, token_hash, scopes, revoked_at
FROM admin_tokens
WHERE key_id = %(key_id)s;

-- name: admin_token_used
-- At most one write a minute per token: last_used_at is for humans.
UPDATE admin_tokens
SET last_used_at = now()
WHERE id = %(id)s
  AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: admin_revoke_token
UPDATE admin_tokens
SET revoked_at = now()
WHERE name = %(token_name)s AND revoked_at IS NULL
RETURNING revoked_at;

-- name: admin_token_by_name
SELECT name, scopes, created_at, revoked_at, last_used_at
FROM admin_tokens
WHERE name = %(token_name)s;

-- name: admin_list_tokens
SELECT name, scopes, created_at, revoked_at, last_used_at
FROM admin_tokens
ORDER BY created_at, id;

-- name: admin_ping
SELECT 1 AS ok;

------------------------------------------------------------------ pooler check

-- name: pooler_probe_lock_session
-- On the run lock's connection: the server's own pid (behind a pooler the
-- BackendKeyData pid is the pooler's), this transaction's local id (a backend
-- counts its transactions one by one: the next one is exactly this + 1 unless
-- some other client ran a transaction on this server connection in between),
-- and the server's clock.
SELECT pg_backend_pid() AS pid,
       (SELECT split_part(virtualxid, '/', 2)::bigint
        FROM pg_locks
        WHERE locktype = 'virtualxid' AND pid = pg_backend_pid() AND granted
          AND virtualxid = virtualtransaction) AS local_xid,
       extract(epoch FROM clock_timestamp())::text AS at;

-- name: pooler_probe_hold_server
-- On a probe connection: open a transaction (any pooler then keeps this server
-- connection for this client) and say which server connection it is and when
-- it was started. Sent as one simple query, without parameters.
BEGIN;
SELECT pg_backend_pid() AS pid, extract(epoch FROM backend_start)::text AS started
FROM pg_stat_activity
WHERE pid = pg_backend_pid();

-- name: pooler_probe_clock
-- On a probe connection that holds a server connection: the server's clock now.
SELECT extract(epoch FROM clock_timestamp())::text AS at;

------------------------------------------------------------------ delivery outbox
-- The deliverer (delivery/) and its sensor; tables of migration 0006. Nothing
-- here runs under the run lock or in the dispatch statement.

-- name: delivery_id_high_mark
-- The highest notifications id handed out so far (committed or not). Read
-- BEFORE checking that no run holds the lock: every id up to it then belongs to
-- a dispatch that has ended, so none of them can still appear later.
SELECT coalesce(
    pg_sequence_last_value(pg_get_serial_sequence('notifications', 'id')::regclass), 0
) AS high_mark;

-- name: lock_delivery_cursor
-- One deliverer expands at a time; another one waits for the running batch (a
-- short transaction) and then sees the cursor moved: nothing is skipped.
SELECT last_notification_id
FROM delivery_cursor
FOR UPDATE;

-- name: deliveries_needed
-- Whether any mentor gets a channel that leaves the database: when none does
-- (the default, in-app only), expanding is one cursor move and nothing else.
SELECT cardinality(array_remove(%(org_channels)s::text[], 'in_app')) > 0
       OR EXISTS (SELECT 1 FROM mentors
                  WHERE channels IS NOT NULL
                    AND cardinality(array_remove(channels, 'in_app')) > 0) AS needed;

-- name: expand_deliveries
-- Reminders in (after_id, upto] become one delivery per channel of their
-- mentor (reached through the assignment) that leaves the database.
INSERT INTO deliveries (notification_id, channel)
SELECT n.id, c.channel
FROM notifications AS n
JOIN assignments AS a ON a.id = n.assignment_id
JOIN mentors AS m ON m.id = a.mentor_id
CROSS JOIN LATERAL unnest(coalesce(m.channels, %(org_channels)s::text[])) AS c (channel)
WHERE n.id > %(after_id)s
  AND n.id <= %(upto)s
  AND c.channel <> 'in_app'
ON CONFLICT ON CONSTRAINT deliveries_one_per_channel DO NOTHING;

-- name: advance_delivery_cursor
UPDATE delivery_cursor
SET last_notification_id = greatest(last_notification_id, %(upto)s);

-- name: claim_deliveries
-- Due deliveries of one channel, leased in one short committed statement (SKIP
-- LOCKED: two deliverers never take the same one). A leased delivery keeps its
-- state (pending/retry), counts the attempt now and is due again only when the
-- lease ends: a crash after the send repeats it at most once per lease, and a
-- delivery whose outcome is never recorded uses up its attempts and ends dead.
-- In the same statement, a delivery whose reminder is stale is cancelled with
-- the reason: a contact after the reminder's silence began (the silence is
-- over) or an assignment that is no longer active. The caller sends the rest.
-- Each leased delivery carries the claim's lease_token: only its holder may
-- record the outcome (0009, fenced outcomes).
WITH claimed AS (
    SELECT id
    FROM deliveries
    WHERE channel = %(channel)s
      AND state IN ('pending', 'retry')
      -- due when this drain began: a retry scheduled by this drain waits for the next
      AND next_attempt_at <= %(due_by)s
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), looked AS (
    SELECT d.id, d.notification_id, d.channel, d.attempts + 1 AS attempts,
           n.kind, n.due_on, n.silence_started_on, n.sequence,
           a.id AS assignment_id, a.mentee_name, a.mentor_id, a.last_contact_date,
           %(today)s::date - a.last_contact_date AS days_since_contact,
           m.name AS mentor_name, m.email AS mentor_email,
           coalesce(m.language, %(language)s) AS language,
           'reminder-' || d.notification_id || '-' || d.channel AS idempotency_key,
           CASE WHEN a.status <> 'active' THEN 'the assignment is ' || a.status
                WHEN a.last_contact_date > n.silence_started_on THEN
                    'contact on ' || a.last_contact_date
                    || ', after the reminder''s silence began on ' || n.silence_started_on
           END AS cancel_reason,
           -- every attempt was leased and none recorded an outcome (crashes)
           d.attempts >= %(max_attempts)s AS used_up
    FROM claimed AS c
    JOIN deliveries AS d ON d.id = c.id
    JOIN notifications AS n ON n.id = d.notification_id
    JOIN assignments AS a ON a.id = n.assignment_id
    JOIN mentors AS m ON m.id = a.mentor_id
), leased AS (
    UPDATE deliveries AS d
    SET state = CASE WHEN l.cancel_reason IS NOT NULL THEN 'cancelled'
                     WHEN l.used_up THEN 'dead' ELSE d.state END,
        attempts = CASE WHEN l.cancel_reason IS NULL AND NOT l.used_up
                        THEN d.attempts + 1 ELSE d.attempts END,
        next_attempt_at = CASE WHEN l.cancel_reason IS NULL AND NOT l.used_up
                               THEN now() + make_interval(secs => %(lease_s)s)
                               ELSE d.next_attempt_at END,
        lease_token = CASE WHEN l.cancel_reason IS NULL AND NOT l.used_up
                           THEN %(lease_token)s::uuid END,
        finished_at = CASE WHEN l.cancel_reason IS NOT NULL OR l.used_up THEN now() END,
        last_error = CASE WHEN l.cancel_reason IS NOT NULL THEN l.cancel_reason
                          WHEN l.used_up THEN
                              'no outcome recorded for the last of ' || d.attempts
                              || ' attempts (' || coalesce(d.last_error, 'crash or lost'
                              || ' database connection during the send') || ')'
                          ELSE d.last_error END
    FROM looked AS l
    WHERE d.id = l.id
    RETURNING d.id
)
SELECT * FROM looked ORDER BY id;

-- name: record_deliveries_sent
-- The attempt was counted by the claim. Fenced: each delivery only while its
-- claim's token (tokens, in step with ids) still holds the lease; the ids returned are those recorded, any other one's
-- outcome came late (another claim took it, or it is final) and changed nothing.
UPDATE deliveries AS d
SET state = 'sent', finished_at = now(), provider_response = r.response, last_error = NULL,
    lease_token = NULL
FROM unnest(%(ids)s::bigint[], %(responses)s::text[], %(tokens)s::uuid[])
     AS r (id, response, token)
WHERE d.id = r.id
  AND d.lease_token = r.token
  AND d.state IN ('pending', 'retry')
RETURNING d.id;

-- name: record_deliveries_failed
-- A permanent error, or the last allowed attempt (counted by the claim), makes
-- the delivery dead; otherwise it waits delay_s (backoff with jitter, or the
-- server's Retry-After). Fenced like record_deliveries_sent.
UPDATE deliveries AS d
SET state = CASE WHEN r.permanent OR d.attempts >= %(max_attempts)s
                 THEN 'dead' ELSE 'retry' END,
    next_attempt_at = now() + make_interval(secs => r.delay_s),
    finished_at = CASE WHEN r.permanent OR d.attempts >= %(max_attempts)s THEN now() END,
    last_error = r.error,
    lease_token = NULL
FROM unnest(%(ids)s::bigint[], %(errors)s::text[], %(delays)s::float8[],
            %(permanent)s::boolean[], %(tokens)s::uuid[])
     AS r (id, error, delay_s, permanent, token)
WHERE d.id = r.id
  AND d.lease_token = r.token
  AND d.state IN ('pending', 'retry')
RETURNING d.id, d.state;

-- name: release_deliveries
-- Leased but not tried (the drain's time was up): due again, the attempt not
-- counted. Fenced like the outcomes.
UPDATE deliveries AS d
SET attempts = d.attempts - 1, next_attempt_at = now(), lease_token = NULL
FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS r (id, token)
WHERE d.id = r.id
  AND d.lease_token = r.token
  AND d.state IN ('pending', 'retry')
RETURNING d.id;

-- name: delivery_clock
SELECT clock_timestamp() AS now;

-- name: due_delivery_channels
-- Channels with deliveries due now (to name those no sender is configured for).
SELECT channel, count(*) AS due
FROM deliveries
WHERE state IN ('pending', 'retry') AND next_attempt_at <= now()
GROUP BY channel
ORDER BY channel;

-- name: delivery_work_waiting
-- For the delivery schedule: deliveries due on the configured channels, and
-- reminders past the cursor when some mentor gets a channel leaving the database.
SELECT EXISTS (SELECT 1 FROM deliveries
               WHERE channel = ANY(%(channels)s::text[])
                 AND state IN ('pending', 'retry') AND next_attempt_at <= now()) AS due,
       (cardinality(array_remove(%(org_channels)s::text[], 'in_app')) > 0
        OR EXISTS (SELECT 1 FROM mentors
                   WHERE channels IS NOT NULL
                     AND cardinality(array_remove(channels, 'in_app')) > 0))
       AND EXISTS (SELECT 1 FROM notifications
                   WHERE id > (SELECT last_notification_id FROM delivery_cursor))
       AS unexpanded;

-- name: delivery_health
-- For the delivery sensor: deliveries that died after a given (finished_at, id),
-- the latest such pair (the sensor's place, whatever order ids die in), and the
-- age of the oldest delivery still waiting.
WITH dead AS (
    SELECT id, finished_at, last_error
    FROM deliveries
    WHERE state = 'dead'
      AND (finished_at, id) > (coalesce(%(after_finished_at)s::timestamptz, '-infinity'),
                               %(after_dead_id)s::bigint)
)
SELECT (SELECT count(*) FROM dead) AS new_dead,
       latest.id AS last_dead_id, latest.finished_at AS last_dead_at,
       (SELECT string_agg(last_error, ' / ') FROM (
            SELECT last_error FROM dead
            ORDER BY finished_at DESC, id DESC LIMIT 3) AS recent) AS recent_errors,
       (SELECT extract(epoch FROM now() - min(created_at))::float8
        FROM deliveries WHERE state IN ('pending', 'retry')) AS oldest_pending_s
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT id, finished_at FROM deliveries
    WHERE state = 'dead' AND finished_at IS NOT NULL
    ORDER BY finished_at DESC, id DESC LIMIT 1
) AS latest ON true;

-- name: set_mentor_delivery
-- A mentor's own channels and language (NULL: the organisation's), and email.
UPDATE mentors
SET channels = CASE WHEN %(set_channels)s THEN %(channels)s::text[] ELSE channels END,
    language = CASE WHEN %(set_language)s THEN %(language)s ELSE language END,
    email = coalesce(%(email)s, email)
WHERE id = %(id)s
RETURNING id, name, email, channels, language;
