-- 0002: the database keeps assignments.last_contact_date in step with contact
-- activities, whatever writes them; admin API tokens and the audit of manual
-- corrections. See docs/decisions/contact-reset-guarantee.md.

------------------------------------------------------------------ last contact

-- Statement-level triggers with transition tables: one set-based pass per
-- statement, so a bulk registration (or the seed's 100,000-row batches) costs a
-- join, not a trigger call per row.
--
-- The rule, in the form the triggers apply it:
--   * a new (or moved) contact moves last_contact_date forward to its date when
--     that date is later; never backward;
--   * a removed (or moved) contact whose date is the current last_contact_date
--     makes it the newest remaining contact, or started_on when none is left.
-- From a consistent state this is exactly "the latest contact activity". A
-- manual correction (admin API) writes assignments directly; the triggers
-- leave it alone until a later contact arrives or the contact it stands on is
-- withdrawn.

CREATE FUNCTION activities_contacts_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Lock the rows that will move, in id order, so concurrent registrations
    -- touching the same assignments queue instead of deadlocking.
    PERFORM 1
    FROM assignments a
    JOIN (SELECT assignment_id, max(occurred_on) AS latest
          FROM added_activities
          WHERE kind = 'contact'
          GROUP BY assignment_id) n ON n.assignment_id = a.id
    WHERE a.last_contact_date < n.latest
    ORDER BY a.id
    FOR NO KEY UPDATE OF a;

    -- Only rows that really move are written: the seed, whose activities match
    -- the assignments' dates already, updates nothing.
    UPDATE assignments a
    SET last_contact_date = n.latest
    FROM (SELECT assignment_id, max(occurred_on) AS latest
          FROM added_activities
          WHERE kind = 'contact'
          GROUP BY assignment_id) n
    WHERE a.id = n.assignment_id
      AND a.last_contact_date < n.latest;
    RETURN NULL;
END
$$;

-- Apply removed and added contacts (parallel arrays) to the touched assignments.
CREATE FUNCTION apply_contact_changes(
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
    SET last_contact_date = t.new_value
    FROM target t
    WHERE a.id = t.id
      AND a.last_contact_date IS DISTINCT FROM t.new_value;
END
$$;

CREATE FUNCTION activities_contacts_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE FUNCTION activities_contacts_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
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

-- Transition tables allow one event per trigger and no column list, hence three.
CREATE TRIGGER activities_last_contact_insert
AFTER INSERT ON activities
REFERENCING NEW TABLE AS added_activities
FOR EACH STATEMENT EXECUTE FUNCTION activities_contacts_added();

CREATE TRIGGER activities_last_contact_update
AFTER UPDATE ON activities
REFERENCING OLD TABLE AS old_activities NEW TABLE AS new_activities
FOR EACH STATEMENT EXECUTE FUNCTION activities_contacts_changed();

CREATE TRIGGER activities_last_contact_delete
AFTER DELETE ON activities
REFERENCING OLD TABLE AS old_activities
FOR EACH STATEMENT EXECUTE FUNCTION activities_contacts_removed();

------------------------------------------------------------------ admin API

CREATE TABLE admin_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Names are never reused, so the audit's token_name stays unambiguous.
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    -- Public part of the token, used to find the row; the secret is only hashed.
    key_id        text NOT NULL UNIQUE,
    -- sha256 of the whole token: the token has 256 random bits, so no salt or
    -- slow hash is needed.
    token_hash    bytea NOT NULL,
    scopes        text[] NOT NULL
                  CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'correct']),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

CREATE TABLE admin_audit (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_name     text NOT NULL REFERENCES admin_tokens (name),
    action         text NOT NULL DEFAULT 'correct_last_contact_date',
    assignment_id  bigint NOT NULL REFERENCES assignments (id),
    old_value      date,
    new_value      date NOT NULL,
    reason         text NOT NULL,
    at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX admin_audit_at_idx ON admin_audit (at DESC, id DESC);
CREATE INDEX admin_audit_assignment_idx ON admin_audit (assignment_id, at DESC);
