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
-- last_contact_date equals carried_for (a later contact starts a fresh silence),
-- so the contact triggers need not know them. Nullable without a default:
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
