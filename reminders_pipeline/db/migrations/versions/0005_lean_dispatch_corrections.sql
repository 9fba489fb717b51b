-- 0005: every per-row cost of the dispatch has a reader; corrections carry the
-- reminders of the silence they move (docs/benchmarks.md, "What each index and
-- constraint on notifications is for"; docs/decisions/contact-reset-guarantee.md).
--
-- notifications kept: the primary key (deliveries reference it), the natural key
-- (idempotent dispatch, and admin_recent_reminders and the correction's count
-- read it by its leading assignment_id), the foreign key to assignments (no
-- reminder for an assignment that does not exist; the deliverer reaches the
-- mentor through it), the CHECKs (no I/O).
-- notifications dropped: the foreign key on mentor_id (a copy of the
-- assignment's mentor_id written by the same statement; assignments' own
-- foreign key guarantees the mentor), the foreign key on run_id (provenance,
-- written by the dispatch from the run row it has just inserted), and the
-- indexes on (mentor_id, created_at), (run_id) and (assignment_id, due_on),
-- which no query reads. A BRIN index on created_at (a few pages for millions of
-- rows) serves `reminders prune`.
-- Only constraints and indexes change: no row is touched.

ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_mentor_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_run_id_fkey;
DROP INDEX IF EXISTS notifications_mentor_idx;
DROP INDEX IF EXISTS notifications_run_idx;
DROP INDEX IF EXISTS notifications_assignment_due_idx;
CREATE INDEX notifications_created_brin ON notifications USING brin (created_at);

-- A manual correction of last_contact_date records, for the silence it starts,
-- how many reminders were sent since the corrected date and the day of the
-- latest one. They count toward the cap and the numbering of that silence, and
-- the next reminder waits one interval after the latest. They apply only while
-- last_contact_date equals carried_for; the contact triggers (below) carry the
-- same way when a contact moves the date. Nullable without a default:
-- adding them rewrites nothing.
ALTER TABLE assignments
    ADD COLUMN carried_for date,
    ADD COLUMN carried_reminders integer CHECK (carried_reminders >= 0),
    ADD COLUMN carried_last_sent_on date;

-- The due rule with what a correction carried (0004's reminder_due with the
-- assignment's three carried_* columns; they apply only while carried_for is the
-- silence's start, so NULLs or another date give 0004's rule). Still one
-- inlinable SELECT.
CREATE FUNCTION reminder_due(
    last_contact date, interval_days integer, as_of date, max_per_silence integer,
    carried_for date, carried integer, carried_last_sent_on date
) RETURNS TABLE (sequence integer, due_on date)
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

-- 0004's next_reminder_due_on with the carried reminders, as above.
CREATE FUNCTION next_reminder_due_on(
    last_contact date, interval_days integer, as_of date, max_per_silence integer,
    carried_for date, carried integer, carried_last_sent_on date
) RETURNS date
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

-- The reminders sent after `since` (a reminder's day: its run's as_of, or its due
-- date when it has no run): how many, and the day of the latest. One probe of the
-- natural key's index by its leading assignment_id, one primary-key probe of the
-- run per reminder (an assignment has a few).
-- SECURITY DEFINER: the contact triggers run as whoever registers the contact,
-- and that role (reminders_contacts, migration 0007) may not read reminders; it
-- learns two numbers about the assignment it is registering for, nothing else.
CREATE FUNCTION reminders_sent_since(assignment bigint, since date)
RETURNS TABLE (reminders integer, last_sent_on date)
LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT count(*)::integer, max(greatest(n.due_on, r.as_of))
    FROM notifications n
    LEFT JOIN reminder_runs r ON r.id = n.run_id
    WHERE n.assignment_id = assignment
      AND greatest(n.due_on, r.as_of) > since
$$;

-- 0002's contact triggers, carrying like a correction: when they move
-- last_contact_date to a day D (a back-dated contact registered late, a contact
-- after a backward correction, a withdrawn contact), the reminders sent after D
-- count toward the cap and numbering of the silence starting D, and the next one
-- waits an interval after the latest (carried_for = D). None sent after D (the
-- usual contact, dated after the last reminder) leaves nothing carried: a fresh
-- silence, #1 due one interval after D. One lookup per moved assignment; a
-- statement that moves nothing (the seed) makes none.
CREATE OR REPLACE FUNCTION activities_contacts_added() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION apply_contact_changes(
    removed_ids bigint[], removed_on date[], added_ids bigint[], added_on date[]
) RETURNS void
LANGUAGE plpgsql AS $$
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
