-- Platform-wide log streams (`streams.rs`): a stream of the platform's own organization may
-- deliver every organization's trail, with a cursor per organization here (an organization
-- without a row is at 0: nothing delivered yet). Existing streams stay their organization's own.
ALTER TABLE streams ADD COLUMN platform_wide INTEGER NOT NULL DEFAULT 0;
CREATE TABLE stream_cursors (
    stream_id   TEXT NOT NULL,
    org_id      INTEGER NOT NULL,
    cursor_seq  INTEGER NOT NULL,
    PRIMARY KEY (stream_id, org_id)
) WITHOUT ROWID;
