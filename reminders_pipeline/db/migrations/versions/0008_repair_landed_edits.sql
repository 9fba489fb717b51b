-- 0008: every database at 0007 has the same objects, whatever text of the
-- migrations it ran; the due rule has one form.
--
-- Four landed migrations were edited after some databases had run them, so those
-- databases never got the edit (docs/decisions/layout.md, "Migrations"). Each
-- edit is repaired here, in a form that changes nothing where the edit is already
-- in place; tests/integration/test_migration_repair.py builds a database from the
-- texts as they first landed, upgrades it and compares its catalog with a fresh one.
--
--   0002  activities_contacts_added() took a cheaper form: replaced below by 0005's
--         final form, which a database whose 0005 predates its edits lacks too.
--   0005  the contact triggers carry like a correction: reminders_sent_since()
--         (SECURITY DEFINER), activities_contacts_added(), apply_contact_changes().
--   0006  the dead-delivery index is on (finished_at, id), not (id).
--   0007  the reminders_contacts role and its grants; the job may no longer
--         UPDATE notifications.

------------------------------------------------------------------ the due rule

-- 0005's seven-argument forms are the due rule (NULL carried values give 0004's
-- rule); 0004's four-argument forms are called by nothing.
DROP FUNCTION IF EXISTS reminder_due(date, integer, date, integer);
DROP FUNCTION IF EXISTS next_reminder_due_on(date, integer, date, integer);

------------------------------------------------------------------ 0005, as edited

-- The reminders sent after `since` (a reminder's day: its run's as_of, or its due
-- date when it has no run): how many, and the day of the latest. One probe of the
-- natural key's index by its leading assignment_id, one primary-key probe of the
-- run per reminder (an assignment has a few).
-- SECURITY DEFINER: the contact triggers run as whoever registers the contact,
-- and that role (reminders_contacts, migration 0007) may not read reminders; it
-- learns two numbers about the assignment it is registering for, nothing else.
CREATE OR REPLACE FUNCTION reminders_sent_since(assignment bigint, since date)
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

------------------------------------------------------------------ 0006, as edited

DO $$
BEGIN
    IF pg_get_indexdef('deliveries_dead_idx'::regclass) NOT LIKE '%(finished_at, id)%' THEN
        DROP INDEX deliveries_dead_idx;
        -- The dead-delivery sensor walks dead rows in the order they died.
        CREATE INDEX deliveries_dead_idx ON deliveries (finished_at, id) WHERE state = 'dead';
    END IF;
END
$$;

------------------------------------------------------------------ 0007, as edited

-- The role 0007 creates when it is missing, as 0007 does.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reminders_contacts') THEN
        BEGIN
            CREATE ROLE reminders_contacts NOLOGIN;
        EXCEPTION
            -- Another database's migration created it in the meantime.
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role reminders_contacts does not exist and % may not create roles',
                    current_user
                    USING HINT = 'As a user with CREATEROLE, once per server: '
                                 'CREATE ROLE reminders_contacts NOLOGIN; then migrate again.';
        END;
    END IF;
END
$$;

-- The grants 0007 gained after landing (granting again what is there changes nothing).
REVOKE UPDATE ON TABLE notifications FROM reminders_job;
GRANT SELECT, INSERT, UPDATE ON TABLE deliveries TO reminders_job;
GRANT SELECT, UPDATE ON TABLE delivery_cursor TO reminders_job;
GRANT SELECT ON TABLE notifications_id_seq TO reminders_job;
GRANT SELECT, UPDATE (last_contact_date, carried_for, carried_reminders, carried_last_sent_on)
    ON TABLE assignments TO reminders_admin_api;
GRANT SELECT ON TABLE reminders_schema_version TO reminders_contacts;
GRANT SELECT, UPDATE (last_contact_date, carried_for, carried_reminders, carried_last_sent_on)
    ON TABLE assignments TO reminders_contacts;
GRANT SELECT, INSERT ON TABLE activities TO reminders_contacts;
