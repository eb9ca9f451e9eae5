
CREATE TABLE members (
    key            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    org_key        INTEGER NOT NULL REFERENCES orgs (key),
    email          TEXT NOT NULL,
    email_key      TEXT NOT NULL UNIQUE,
    name           TEXT,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX members_org ON members (org_key);

CREATE TABLE sessions (
    token_hash    BLOB PRIMARY KEY,
    member_key    INTEGER NOT NULL REFERENCES members (key) ON DELETE CASCADE,
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    revoked_ms    INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_member ON sessions (member_key);
CREATE INDEX sessions_expires ON sessions (expires_ms);
