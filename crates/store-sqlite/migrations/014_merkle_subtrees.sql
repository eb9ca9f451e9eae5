-- The hash of every perfect subtree of 256 leaves and more of each organization's Merkle tree
-- (`stele_store::proofs`), appended by the writer in the transaction of the entry that closes
-- it, so a proof reads O(log n) of them instead of every entry hash. `level` is the subtree's
-- height (its leaves are `idx << level` to `(idx + 1) << level`, leaf `i` being `seq = i + 1`).
CREATE TABLE merkle_subtrees (
    org_id  INTEGER NOT NULL,
    level   INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    hash    BLOB NOT NULL,
    PRIMARY KEY (org_id, level, idx)
) WITHOUT ROWID;
CREATE TRIGGER merkle_subtrees_immutable BEFORE UPDATE ON merkle_subtrees
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;
CREATE TRIGGER merkle_subtrees_kept BEFORE DELETE ON merkle_subtrees
WHEN NOT EXISTS (SELECT 1 FROM org_deletion_gate d WHERE d.org_id = OLD.org_id)
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;

-- Chains older than this table: their subtrees up to `up_to_seq` are computed from the entry
-- hashes when the store next opens (`subtrees.rs`), and the row is deleted once they are in.
CREATE TABLE merkle_subtrees_to_fill (
    org_id     INTEGER PRIMARY KEY,
    up_to_seq  INTEGER NOT NULL
);
INSERT INTO merkle_subtrees_to_fill (org_id, up_to_seq)
SELECT org_id, seq FROM chain_state WHERE seq >= 256;
