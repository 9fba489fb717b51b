-- Initial schema: mentors, assignments, activities, the notifications outbox and
-- the execution log.

CREATE TABLE mentors (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    email       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assignments (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mentor_id               bigint NOT NULL REFERENCES mentors (id),
    mentee_name             text NOT NULL,
    status                  text NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'paused', 'closed')),
    started_on              date NOT NULL,
    last_contact_date       date NOT NULL,
    -- NULL: the configured default interval applies.
    reminder_interval_days  integer CHECK (reminder_interval_days > 0),
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_mentor_idx ON assignments (mentor_id);
-- Dispatch walks active assignments in id order (keyset pagination).
CREATE INDEX assignments_active_id_idx ON assignments (id) WHERE status = 'active';

CREATE TABLE activities (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    assignment_id   bigint NOT NULL REFERENCES assignments (id),
    kind            text NOT NULL DEFAULT 'contact',
    occurred_on     date NOT NULL,
    registered_via  text NOT NULL DEFAULT 'direct'
                    CHECK (registered_via IN ('direct', 'proxy', 'bulk', 'coordinator_proxy')),
    registered_by   text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_assignment_idx ON activities (assignment_id, occurred_on DESC);

CREATE TABLE reminder_runs (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status                  text NOT NULL
                            CHECK (status IN ('running', 'success', 'skipped', 'failed', 'abandoned')),
    as_of                   date NOT NULL,
    dagster_run_id          text,
    trigger                 text NOT NULL DEFAULT 'manual',
    started_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at             timestamptz,
    selected                integer,
    created                 integer,
    already_existed         integer,
    error                   text,
    -- The backend holding the run lock while this run was 'running'.
    lock_backend_pid        integer,
    -- For 'skipped': who held the lock.
    blocked_by_pid              integer,
    blocked_by_application_name text,
    blocked_by_run_id           text,
    blocked_since               timestamptz
);
CREATE INDEX reminder_runs_started_idx ON reminder_runs (started_at DESC, id DESC);
CREATE INDEX reminder_runs_status_idx ON reminder_runs (status) WHERE status = 'running';
CREATE INDEX reminder_runs_dagster_run_idx ON reminder_runs (dagster_run_id);

CREATE TABLE notifications (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    assignment_id       bigint NOT NULL REFERENCES assignments (id),
    mentor_id           bigint NOT NULL REFERENCES mentors (id),
    kind                text NOT NULL,
    -- The natural key's date: last contact + sequence * interval.
    due_on              date NOT NULL,
    silence_started_on  date NOT NULL,
    sequence            integer NOT NULL CHECK (sequence > 0),
    channel             text NOT NULL DEFAULT 'in_app',
    state               text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    run_id              bigint REFERENCES reminder_runs (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    delivered_at        timestamptz,
    -- Idempotent dispatch: one reminder per assignment, kind and due date,
    -- whatever number of runs try to create it.
    CONSTRAINT notifications_natural_key UNIQUE (assignment_id, kind, due_on)
);
CREATE INDEX notifications_mentor_idx ON notifications (mentor_id, created_at DESC);
CREATE INDEX notifications_run_idx ON notifications (run_id);
