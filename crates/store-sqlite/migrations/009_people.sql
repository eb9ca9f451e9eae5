-- One person, many organizations. `people` holds what signing in checks (one row per email, by
-- `email_key`); `members` becomes a membership of one organization (role, disabled), at most one
-- per person and organization. Every member today is its own person (the email was unique), so
-- each becomes a person with the same key.
--
-- SQLite cannot drop the UNIQUE `email_key` column of `members`, so the table is rebuilt (create,
-- copy, drop, rename, index). `sessions` references `members (key)` ON DELETE CASCADE, and with
-- foreign keys on (schema.rs turns them on before migrating) DROP TABLE members would first
-- delete every row and so every session. So the sessions are set aside in a temporary table, and
-- `sessions` is dropped and rebuilt after `members`: nothing references `members` when it goes,
-- and no session is lost, whatever the foreign_keys setting.
CREATE TABLE people (
    key            INTEGER PRIMARY KEY,
    email          TEXT NOT NULL,
    email_key      TEXT NOT NULL UNIQUE,
    name           TEXT,
    password_hash  TEXT NOT NULL,
    created_ms     INTEGER NOT NULL
);
INSERT INTO people (key, email, email_key, name, password_hash, created_ms)
SELECT key, email, email_key, name, password_hash, created_ms FROM members;

CREATE TEMPORARY TABLE sessions_kept AS SELECT * FROM sessions;
DROP TABLE sessions;

-- `last_used_ms`: when the person last signed in to or switched to this membership, so that
-- sign-in starts where they left off.
CREATE TABLE members_new (
    key           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    org_key       INTEGER NOT NULL REFERENCES orgs (key),
    person_key    INTEGER NOT NULL REFERENCES people (key),
    role          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    last_used_ms  INTEGER,
    UNIQUE (org_key, person_key)
);
INSERT INTO members_new (key, id, org_key, person_key, role, created_ms, disabled)
SELECT key, id, org_key, key, role, created_ms, disabled FROM members;
DROP TABLE members;
ALTER TABLE members_new RENAME TO members;
-- (org_key, person_key) is the unique index's order, so listing an organization's members needs
-- no index of its own.
CREATE INDEX members_person ON members (person_key);

CREATE TABLE sessions (
    token_hash    BLOB PRIMARY KEY,
    member_key    INTEGER NOT NULL REFERENCES members (key) ON DELETE CASCADE,
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    revoked_ms    INTEGER
) WITHOUT ROWID;
INSERT INTO sessions (token_hash, member_key, created_ms, expires_ms, last_seen_ms, revoked_ms)
SELECT token_hash, member_key, created_ms, expires_ms, last_seen_ms, revoked_ms FROM sessions_kept;
DROP TABLE sessions_kept;
CREATE INDEX sessions_member ON sessions (member_key);
CREATE INDEX sessions_expires ON sessions (expires_ms);
