-- The last signed checkpoint a verification of each organization's chain passed, and the Merkle
-- frontier at it (JSON, as in `chain_state`): an incremental verification resumes there, after
-- checking that the frontier folds to the checkpoint's signed root. Losing a row costs one full
-- verification, nothing else.
CREATE TABLE verified_points (
    org_id          INTEGER PRIMARY KEY,
    checkpoint_seq  INTEGER NOT NULL,
    frontier        TEXT NOT NULL,
    verified_ms     INTEGER NOT NULL
);
