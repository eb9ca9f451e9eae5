-- Erasure and redaction reach every erasable value (stele_core::seal): besides the personal
-- fields and the seal (`salt`), an entry's description and body may be rewritten while `erased`
-- is set. Everything the chain commits to in the clear must still stay as it was.
CREATE OR REPLACE FUNCTION stele_entries_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.erased AND
        (NEW.pk, NEW.org_id, NEW.seq, NEW.occurred_ms, NEW.recorded_ms, NEW.action,
         NEW.detailed_action, NEW.channel, NEW.actor_type, NEW.outcome, NEW.entity_type,
         NEW.correlation_id, NEW.personal_digest, NEW.hash)
        IS NOT DISTINCT FROM
        (OLD.pk, OLD.org_id, OLD.seq, OLD.occurred_ms, OLD.recorded_ms, OLD.action,
         OLD.detailed_action, OLD.channel, OLD.actor_type, OLD.outcome, OLD.entity_type,
         OLD.correlation_id, OLD.personal_digest, OLD.hash)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are immutable';
END
$$;
