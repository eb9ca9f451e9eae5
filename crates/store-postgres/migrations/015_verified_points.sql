-- The last signed checkpoint a verification of each organization's chain passed, and the Merkle
-- frontier at it (JSON, as in `chain_state`): an incremental verification resumes there, after
-- checking that the frontier folds to the checkpoint's signed root. Losing a row costs one full
-- verification, nothing else.
CREATE TABLE verified_points (
    org_id          bigint PRIMARY KEY,
    checkpoint_seq  bigint NOT NULL,
    frontier        text NOT NULL,
    verified_ms     bigint NOT NULL
);
