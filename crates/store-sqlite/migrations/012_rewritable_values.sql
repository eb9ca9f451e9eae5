-- Erasure and redaction reach every erasable value (stele_core::seal): besides the personal
-- fields and the seal (`salt`), an entry's description and body may be rewritten while `erased`
-- is set. Everything the chain commits to in the clear must still stay as it was.
DROP TRIGGER entries_immutable;
CREATE TRIGGER entries_immutable BEFORE UPDATE ON entries
WHEN NEW.erased <> 1
  OR NEW.pk IS NOT OLD.pk OR NEW.org_id IS NOT OLD.org_id OR NEW.seq IS NOT OLD.seq
  OR NEW.occurred_ms IS NOT OLD.occurred_ms OR NEW.recorded_ms IS NOT OLD.recorded_ms
  OR NEW.action IS NOT OLD.action OR NEW.detailed_action IS NOT OLD.detailed_action
  OR NEW.channel IS NOT OLD.channel OR NEW.actor_type IS NOT OLD.actor_type
  OR NEW.outcome IS NOT OLD.outcome OR NEW.entity_type IS NOT OLD.entity_type
  OR NEW.correlation_id IS NOT OLD.correlation_id
  OR NEW.personal_digest IS NOT OLD.personal_digest OR NEW.hash IS NOT OLD.hash
BEGIN
    SELECT RAISE(ABORT, 'audit entries are immutable');
END;
