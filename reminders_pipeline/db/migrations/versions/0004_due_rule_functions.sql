-- 0004: the due rule, once, as SQL functions.
--
-- An 'active' assignment is due on date D when D - last_contact_date reaches its
-- interval. While the silence lasts, a reminder repeats every interval, up to a
-- maximum per silence: reminder number n of a silence is due on
-- last_contact_date + n * interval. The count query, the dispatch batches and the
-- admin API call these functions; core/due.py has the Python twin for callers
-- without a database, held equal to them by tests/integration/test_due_rule_sql.py.
--
-- Plain LANGUAGE sql, IMMUTABLE, one SELECT: the planner inlines them, so the
-- set-based queries run as if the expressions were written in place.

-- The latest reminder due on or before as_of: its number in the silence and its
-- due date; no row when the silence is shorter than one interval.
CREATE FUNCTION reminder_due(
    last_contact date, interval_days integer, as_of date, max_per_silence integer
) RETURNS TABLE (sequence integer, due_on date)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT n.s, last_contact + n.s * interval_days
    FROM (SELECT least((as_of - last_contact) / interval_days, max_per_silence) AS s) AS n
    WHERE as_of - last_contact >= interval_days
$$;

-- The due date of the next reminder of the silence on or after as_of, or NULL
-- when the silence has used its reminders before as_of. A reminder due on as_of
-- itself counts as next (that day's run may not have happened yet).
CREATE FUNCTION next_reminder_due_on(
    last_contact date, interval_days integer, as_of date, max_per_silence integer
) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN n.s <= max_per_silence THEN last_contact + n.s * interval_days END
    FROM (
        SELECT greatest(1, ceil((as_of - last_contact)::numeric / interval_days)::integer) AS s
    ) AS n
$$;
