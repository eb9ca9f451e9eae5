-- Log streams (`streams.rs`): each organization's deliveries of its trail to a receiver, where
-- each stands (the cursor) and which server process delivers it (the lease). Bookkeeping, not
-- part of the record; a stream's configuration changes are recorded in the trail itself.
CREATE TABLE streams (
    id                    TEXT PRIMARY KEY,
    org_id                INTEGER NOT NULL REFERENCES orgs (key),
    name                  TEXT NOT NULL,
    spec                  TEXT NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('active', 'paused')),
    paused_reason         TEXT,
    cursor_seq            INTEGER NOT NULL,
    delivered             INTEGER NOT NULL DEFAULT 0,
    failures              INTEGER NOT NULL DEFAULT 0,
    last_error            TEXT,
    last_error_ms         INTEGER,
    last_delivery_ms      INTEGER,
    retry_ms              INTEGER,
    secret_version        INTEGER NOT NULL DEFAULT 1,
    previous_secret_until INTEGER,
    revision              INTEGER NOT NULL DEFAULT 1,
    lease_owner           TEXT,
    lease_until           INTEGER,
    created_ms            INTEGER NOT NULL,
    updated_ms            INTEGER NOT NULL
);
CREATE INDEX streams_org ON streams (org_id, created_ms);
