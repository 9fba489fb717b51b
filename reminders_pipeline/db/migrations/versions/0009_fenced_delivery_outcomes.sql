-- 0009: fenced delivery outcomes (docs/decisions/delivery-outbox.md, "Fencing").
--
-- Every claim writes a fresh lease_token on the deliveries it leases; an outcome
-- (sent, retry, dead) or a release is written only where the delivery is still
-- pending/retry AND carries the recorder's token, in the same statement. A
-- deliverer whose lease ran out (frozen, or a send that outlived it) and whose
-- delivery another deliverer has claimed since finds another token: its late
-- outcome changes nothing. An outcome clears the token.
ALTER TABLE deliveries ADD COLUMN lease_token uuid;

-- sent, dead and cancelled are final, whoever writes (a late outcome, an
-- operator's UPDATE, another application): the trigger refuses the change.
CREATE FUNCTION deliveries_final_state_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    RAISE EXCEPTION 'delivery % is %, a final state: it cannot become %',
        OLD.id, OLD.state, NEW.state
        USING ERRCODE = 'check_violation';
END
$$;

CREATE TRIGGER deliveries_final_state
    BEFORE UPDATE OF state ON deliveries
    FOR EACH ROW
    WHEN (OLD.state IN ('sent', 'dead', 'cancelled') AND NEW.state IS DISTINCT FROM OLD.state)
    EXECUTE FUNCTION deliveries_final_state_guard();
