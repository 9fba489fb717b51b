-- 0003: the natural key of a reminder is (assignment, kind, silence, number).
--
-- 0001 keyed reminders by (assignment, kind, due_on), with due_on = last contact
-- + number * interval. Changing an interval (the default, or an assignment's own)
-- during a silence moved the due date of a reminder already sent, so it was
-- created again, and the cap per silence no longer held. The silence (its first
-- day, silence_started_on) and the reminder's number in it do not move: with
-- them as the key, the nth reminder of a silence exists at most once whatever the
-- interval, and a new contact starts a new silence. due_on stays as data.
--
-- Existing rows: a duplicate (assignment, kind, silence, number) can only come
-- from an interval change under the old key; the earliest copy is kept.

DELETE FROM notifications n
USING notifications older
WHERE older.assignment_id = n.assignment_id
  AND older.kind = n.kind
  AND older.silence_started_on = n.silence_started_on
  AND older.sequence = n.sequence
  AND older.id < n.id;

ALTER TABLE notifications DROP CONSTRAINT notifications_natural_key;
ALTER TABLE notifications
    ADD CONSTRAINT notifications_natural_key
    UNIQUE (assignment_id, kind, silence_started_on, sequence);
CREATE INDEX notifications_assignment_due_idx ON notifications (assignment_id, due_on DESC);
