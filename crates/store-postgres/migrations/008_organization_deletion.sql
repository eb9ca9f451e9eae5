-- Deleting an organization (Tenancy::delete_org). First the organization is marked deleted (no
-- request names it any more, its keys and members stop working), then its data is removed in
-- batches, each in its own transaction, and last the organization itself. The trail's guards let
-- a row of an organization go only inside a transaction that has set `stele.deleting_org` to that
-- organization (a transaction-local setting, gone at COMMIT or ROLLBACK); nothing else can.
-- `deleted_ms`: when the deletion began (the organization is gone for every request from then);
-- `purged_ms`: when its data was all removed. The row itself stays, as a tombstone.
ALTER TABLE orgs ADD COLUMN deleted_ms bigint;
ALTER TABLE orgs ADD COLUMN purged_ms bigint;

CREATE FUNCTION stele_refuse_unless_deleting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.org_id::text = current_setting('stele.deleting_org', true) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '%', TG_ARGV[0];
END
$$;

CREATE OR REPLACE FUNCTION stele_entries_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    org    text := current_setting('stele.retention_org', true);
    below  text := current_setting('stele.retention_below_pk', true);
BEGIN
    IF OLD.org_id::text = current_setting('stele.deleting_org', true) THEN
        RETURN OLD;
    END IF;
    -- Checked before it is cast, so a malformed setting is refused like a missing one.
    IF OLD.org_id::text = org AND below ~ '^-?[0-9]{1,19}$' THEN
        IF OLD.pk < below::numeric THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit entries are immutable';
END
$$;

DROP TRIGGER chain_state_kept ON chain_state;
CREATE TRIGGER chain_state_kept BEFORE DELETE ON chain_state
    FOR EACH ROW EXECUTE FUNCTION stele_refuse_unless_deleting('the chain only moves forward');

DROP TRIGGER checkpoints_immutable ON checkpoints;
CREATE TRIGGER checkpoints_immutable BEFORE UPDATE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION stele_refuse('checkpoints are immutable');
CREATE TRIGGER checkpoints_undeletable BEFORE DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION stele_refuse_unless_deleting('checkpoints are immutable');

DROP TRIGGER pruned_entries_immutable ON pruned_entries;
CREATE TRIGGER pruned_entries_immutable BEFORE UPDATE ON pruned_entries
    FOR EACH ROW EXECUTE FUNCTION stele_refuse('the chain only moves forward');
CREATE TRIGGER pruned_entries_kept BEFORE DELETE ON pruned_entries
    FOR EACH ROW EXECUTE FUNCTION stele_refuse_unless_deleting('the chain only moves forward');
