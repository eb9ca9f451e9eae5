-- The hash of every perfect subtree of 256 leaves and more of each organization's Merkle tree
-- (`stele_store::proofs`), inserted by the writer in the transaction of the entry that closes
-- it, so a proof reads O(log n) of them instead of every entry hash. `level` is the subtree's
-- height (its leaves are `idx << level` to `(idx + 1) << level`, leaf `i` being `seq = i + 1`).
CREATE TABLE merkle_subtrees (
    org_id  bigint NOT NULL,
    level   smallint NOT NULL,
    idx     bigint NOT NULL,
    hash    bytea NOT NULL,
    PRIMARY KEY (org_id, level, idx)
);
CREATE TRIGGER merkle_subtrees_immutable BEFORE UPDATE ON merkle_subtrees
    FOR EACH ROW EXECUTE FUNCTION stele_refuse('the chain only moves forward');
CREATE TRIGGER merkle_subtrees_kept BEFORE DELETE ON merkle_subtrees
    FOR EACH ROW EXECUTE FUNCTION stele_refuse_unless_deleting('the chain only moves forward');
CREATE TRIGGER merkle_subtrees_untruncatable BEFORE TRUNCATE ON merkle_subtrees
    FOR EACH STATEMENT EXECUTE FUNCTION stele_refuse('the chain only moves forward');

-- Chains older than this table: their subtrees up to `up_to_seq` are computed from the entry
-- hashes by the next server or `stele` command that opens the database (`subtrees.rs`), and the
-- row is deleted once they are in.
CREATE TABLE merkle_subtrees_to_fill (
    org_id     bigint PRIMARY KEY,
    up_to_seq  bigint NOT NULL
);
INSERT INTO merkle_subtrees_to_fill (org_id, up_to_seq)
SELECT org_id, seq FROM chain_state WHERE seq >= 256;
