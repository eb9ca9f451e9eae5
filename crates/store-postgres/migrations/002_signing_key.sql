
CREATE TABLE signing_key (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key_id      text NOT NULL,
    claimed_ms  bigint NOT NULL
);
