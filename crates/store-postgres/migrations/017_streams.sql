-- Log streams (`streams.rs`): each organization's deliveries of its trail to a receiver, where
-- each stands (the cursor) and which server process delivers it (the lease). Bookkeeping, not
-- part of the record; a stream's configuration changes are recorded in the trail itself.
CREATE TABLE streams (
    id                    text PRIMARY KEY,
    org_id                bigint NOT NULL REFERENCES orgs (key),
    name                  text NOT NULL,
    spec                  text NOT NULL,
    state                 text NOT NULL CHECK (state IN ('active', 'paused')),
    paused_reason         text,
    cursor_seq            bigint NOT NULL,
    delivered             bigint NOT NULL DEFAULT 0,
    failures              bigint NOT NULL DEFAULT 0,
    last_error            text,
    last_error_ms         bigint,
    last_delivery_ms      bigint,
    retry_ms              bigint,
    secret_version        bigint NOT NULL DEFAULT 1,
    previous_secret_until bigint,
    revision              bigint NOT NULL DEFAULT 1,
    lease_owner           text,
    lease_until           bigint,
    created_ms            bigint NOT NULL,
    updated_ms            bigint NOT NULL
);
CREATE INDEX streams_org ON streams (org_id, created_ms);
