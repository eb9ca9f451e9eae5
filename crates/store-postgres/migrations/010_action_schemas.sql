-- Action schemas (`action_schemas.rs`): versioned documents describing what an action's events
-- carry (the WorkOS door's schemas), per organization and action. Configuration, not part of the
-- record: none of the trail's guards apply.
CREATE TABLE action_schemas (
    org_id      bigint NOT NULL REFERENCES orgs (key),
    action      text NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    document    text NOT NULL,
    created_ms  bigint NOT NULL,
    PRIMARY KEY (org_id, action, version)
);
