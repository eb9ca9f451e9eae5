-- Deleting an organization (Tenancy::delete_org). First the organization is marked deleted (no
-- request names it any more, its keys and members stop working), then its data is removed in
-- batches, each in its own transaction, and last the organization itself. The trail's guards let
-- a row of an organization go only while that organization is in `org_deletion_gate`, which the
-- deletion fills and empties inside each of its transactions; nothing else can.
-- `deleted_ms`: when the deletion began (the organization is gone for every request from then);
-- `purged_ms`: when its data was all removed. The row itself stays, as a tombstone, so that its
-- key is never given to another organization.
ALTER TABLE orgs ADD COLUMN deleted_ms INTEGER;
ALTER TABLE orgs ADD COLUMN purged_ms INTEGER;

CREATE TABLE org_deletion_gate (
    org_id  INTEGER PRIMARY KEY
);

DROP TRIGGER entries_undeletable;
CREATE TRIGGER entries_undeletable BEFORE DELETE ON entries
WHEN NOT EXISTS (
    SELECT 1 FROM retention_gate g WHERE g.org_id = OLD.org_id AND OLD.pk < g.below_pk
) AND NOT EXISTS (SELECT 1 FROM org_deletion_gate d WHERE d.org_id = OLD.org_id)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are immutable');
END;

DROP TRIGGER chain_state_kept;
CREATE TRIGGER chain_state_kept BEFORE DELETE ON chain_state
WHEN NOT EXISTS (SELECT 1 FROM org_deletion_gate d WHERE d.org_id = OLD.org_id)
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;

DROP TRIGGER checkpoints_undeletable;
CREATE TRIGGER checkpoints_undeletable BEFORE DELETE ON checkpoints
WHEN NOT EXISTS (SELECT 1 FROM org_deletion_gate d WHERE d.org_id = OLD.org_id)
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are immutable');
END;

DROP TRIGGER pruned_entries_kept;
CREATE TRIGGER pruned_entries_kept BEFORE DELETE ON pruned_entries
WHEN NOT EXISTS (SELECT 1 FROM org_deletion_gate d WHERE d.org_id = OLD.org_id)
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;
