-- Action schemas (`action_schemas.rs`): versioned documents describing what an action's events
-- carry (the WorkOS door's schemas), per organization and action. Configuration, not part of the
-- record: none of the trail's guards apply.
CREATE TABLE action_schemas (
    org_id      INTEGER NOT NULL REFERENCES orgs (key),
    action      TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    document    TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (org_id, action, version)
) WITHOUT ROWID;
