-- What Retraced's embedded viewer keeps per organization (`retraced_viewer.rs`): its saved
-- exports (a name and the search they render) and the API tokens of its token screen, of which
-- only a SHA-256 of the secret is kept. Configuration, not part of the record: none of the
-- trail's guards apply.
CREATE TABLE retraced_saved_exports (
    id          TEXT PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs (key),
    name        TEXT NOT NULL,
    query       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX retraced_saved_exports_by_org ON retraced_saved_exports (org_id, created_ms);

CREATE TABLE retraced_api_tokens (
    id            TEXT PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES orgs (key),
    display_name  TEXT NOT NULL,
    secret_hash   BLOB NOT NULL,
    created_ms    INTEGER NOT NULL
);
CREATE INDEX retraced_api_tokens_by_org ON retraced_api_tokens (org_id, created_ms);
