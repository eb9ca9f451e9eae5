
CREATE TABLE org_settings (
    org_id      INTEGER PRIMARY KEY,
    settings    TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- A pruned entry's place in the chain: its seq and hash, so that the entries after it, the
-- checkpoints and the Merkle proofs still verify (retention.rs).
CREATE TABLE pruned_entries (
    org_id  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    hash    BLOB NOT NULL,
    PRIMARY KEY (org_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER pruned_entries_immutable BEFORE UPDATE ON pruned_entries
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;
CREATE TRIGGER pruned_entries_kept BEFORE DELETE ON pruned_entries
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;

-- Opened by a retention run inside its own transaction (and closed before it commits): while
-- a row is here, entries of that organization older than `below_pk` may be deleted. Nothing
-- else can delete an entry.
CREATE TABLE retention_gate (
    org_id    INTEGER NOT NULL,
    below_pk  INTEGER NOT NULL
);
DROP TRIGGER entries_undeletable;
CREATE TRIGGER entries_undeletable BEFORE DELETE ON entries
WHEN NOT EXISTS (
    SELECT 1 FROM retention_gate g WHERE g.org_id = OLD.org_id AND OLD.pk < g.below_pk
)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are immutable');
END;

-- When each scheduled job last ran (claimed by one server per due time).
CREATE TABLE scheduled_runs (
    name    TEXT PRIMARY KEY,
    due_ms  INTEGER NOT NULL
);
