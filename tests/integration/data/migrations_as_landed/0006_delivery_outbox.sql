-- 0006: reminders leave the database. See docs/decisions/delivery-outbox.md.
--
-- A reminder (a notifications row) is created exactly once by the daily run; the
-- deliverer expands it into one delivery per channel the mentor gets that leaves
-- the database (email, webhook) and sends each at least once. In-app needs no
-- delivery: the notifications row is the in-app reminder. Deliveries reference
-- notifications(id) only, and nothing here touches the dispatch statement.

-- Per-mentor override of the organisation's channels (REMINDERS_CHANNELS) and
-- language (REMINDERS_LANGUAGE); NULL: the organisation's.
ALTER TABLE mentors
    ADD COLUMN channels text[]
        CHECK (channels <@ ARRAY['in_app', 'email', 'webhook']::text[]),
    ADD COLUMN language text CHECK (language IN ('nb', 'en'));
-- The deliverer asks "does any mentor get more than in-app?" on every drain.
CREATE INDEX mentors_channels_idx ON mentors (id) WHERE channels IS NOT NULL;

CREATE TABLE deliveries (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id     bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel             text NOT NULL CHECK (channel IN ('email', 'webhook')),
    state               text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'retry', 'sent', 'dead', 'cancelled')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    -- sent: the provider's answer (SMTP message id, HTTP status and body start).
    provider_response   text,
    -- retry/dead: the last error; cancelled: why.
    last_error          text,
    -- Exactly one delivery per reminder and channel, whoever expands it.
    CONSTRAINT deliveries_one_per_channel UNIQUE (notification_id, channel)
);
-- The claim: due deliveries of one channel, oldest first.
CREATE INDEX deliveries_due_idx ON deliveries (channel, next_attempt_at, id)
    WHERE state IN ('pending', 'retry');
-- The dead-delivery sensor walks dead rows by id.
CREATE INDEX deliveries_dead_idx ON deliveries (id) WHERE state = 'dead';

-- How far the deliverer has expanded notifications into deliveries (one row).
CREATE TABLE delivery_cursor (
    only_row            boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_notification_id bigint NOT NULL
);
-- Reminders that exist before this migration are not delivered afresh.
INSERT INTO delivery_cursor (last_notification_id)
SELECT coalesce(max(id), 0) FROM notifications;
