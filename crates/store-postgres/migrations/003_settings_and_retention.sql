
-- One JSON document per organization (stele_store::OrgSettings), so a setting added later
-- needs no migration.
CREATE TABLE org_settings (
    org_id      bigint PRIMARY KEY REFERENCES orgs (key),
    settings    text NOT NULL,
    updated_ms  bigint NOT NULL
);

-- A pruned entry's place in the chain: its seq and hash, so that the entries after it, the
-- checkpoints and the Merkle proofs still verify (retention.rs). Never changed, never removed.
CREATE TABLE pruned_entries (
    org_id  bigint NOT NULL,
    seq     bigint NOT NULL,
    hash    bytea NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE TRIGGER pruned_entries_immutable BEFORE UPDATE OR DELETE ON pruned_entries
    FOR EACH ROW EXECUTE FUNCTION stele_refuse('the chain only moves forward');
CREATE TRIGGER pruned_entries_untruncatable BEFORE TRUNCATE ON pruned_entries
    FOR EACH STATEMENT EXECUTE FUNCTION stele_refuse('the chain only moves forward');

-- An entry may be deleted only by a retention run: inside its transaction, which has set
-- `stele.retention_org` and `stele.retention_below_pk` (transaction-local settings, gone at
-- COMMIT or ROLLBACK), and only an entry of that organization older than that bound. Unset,
-- `current_setting(…, true)` is NULL (or '' once the name was used in the session), which
-- matches nothing.
CREATE FUNCTION stele_entries_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    org    text := current_setting('stele.retention_org', true);
    below  text := current_setting('stele.retention_below_pk', true);
BEGIN
    -- Checked before it is cast, so a malformed setting is refused like a missing one.
    IF OLD.org_id::text = org AND below ~ '^-?[0-9]{1,19}$' THEN
        IF OLD.pk < below::numeric THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit entries are immutable';
END
$$;
-- Dropping the parent's row trigger drops its copies on the partitions, and creating it again
-- copies the new one onto every existing partition (and, as before, onto each one attached
-- later).
DROP TRIGGER entries_undeletable ON entries;
CREATE TRIGGER entries_undeletable BEFORE DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION stele_entries_delete();

-- When each scheduled job last ran: claimed by one server per due time.
CREATE TABLE scheduled_runs (
    name    text PRIMARY KEY,
    due_ms  bigint NOT NULL
);
