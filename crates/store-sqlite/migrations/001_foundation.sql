
CREATE TABLE orgs (
    key         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    org_key     INTEGER NOT NULL REFERENCES orgs(key),
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    hash        BLOB NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);

CREATE TABLE dict (
    id     INTEGER PRIMARY KEY,
    kind   INTEGER NOT NULL,
    value  TEXT NOT NULL,
    UNIQUE (kind, value)
);

-- Which dictionary values (and actor types) each organization has used: the facets.
CREATE TABLE org_facets (
    org_id   INTEGER NOT NULL,
    dict_id  INTEGER NOT NULL,
    PRIMARY KEY (org_id, dict_id)
) WITHOUT ROWID;

CREATE TABLE entries (
    pk               INTEGER PRIMARY KEY,
    org_id           INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    occurred_ms      INTEGER NOT NULL,
    recorded_ms      INTEGER NOT NULL,
    action           INTEGER NOT NULL,
    detailed_action  INTEGER,
    channel          INTEGER NOT NULL,
    actor_type       INTEGER NOT NULL,
    outcome          INTEGER NOT NULL,
    entity_type      INTEGER,
    correlation_id   TEXT,
    description      TEXT,
    body             TEXT NOT NULL,
    -- Personal fields (actor id, name, email; ip; user agent) as JSON, erasable (chain.rs).
    personal         TEXT NOT NULL,
    -- NULL once erased: without the salt the digest can no longer be tested against a guess.
    salt             BLOB,
    personal_digest  BLOB NOT NULL,
    erased           INTEGER NOT NULL DEFAULT 0,
    -- The chain: SHA-256 over the previous entry's hash and this entry (stele_core::chain).
    hash             BLOB NOT NULL
);

-- Entries are immutable. The only change allowed is an erasure, which replaces the personal
-- fields (and drops the salt) while setting `erased`; every other column must stay as it was.
CREATE TRIGGER entries_immutable BEFORE UPDATE ON entries
WHEN NEW.erased <> 1
  OR NEW.pk IS NOT OLD.pk OR NEW.org_id IS NOT OLD.org_id OR NEW.seq IS NOT OLD.seq
  OR NEW.occurred_ms IS NOT OLD.occurred_ms OR NEW.recorded_ms IS NOT OLD.recorded_ms
  OR NEW.action IS NOT OLD.action OR NEW.detailed_action IS NOT OLD.detailed_action
  OR NEW.channel IS NOT OLD.channel OR NEW.actor_type IS NOT OLD.actor_type
  OR NEW.outcome IS NOT OLD.outcome OR NEW.entity_type IS NOT OLD.entity_type
  OR NEW.correlation_id IS NOT OLD.correlation_id OR NEW.description IS NOT OLD.description
  OR NEW.body IS NOT OLD.body OR NEW.personal_digest IS NOT OLD.personal_digest
  OR NEW.hash IS NOT OLD.hash
BEGIN
    SELECT RAISE(ABORT, 'audit entries are immutable');
END;

-- Nothing deletes an entry; retention (which moves the chain's start) will be the one exception.
CREATE TRIGGER entries_undeletable BEFORE DELETE ON entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are immutable');
END;

-- Where each organization's chain stands: the last seq, its hash, and the Merkle frontier.
CREATE TABLE chain_state (
    org_id    INTEGER PRIMARY KEY,
    seq       INTEGER NOT NULL,
    head      BLOB NOT NULL,
    frontier  TEXT NOT NULL
);

-- The chain only moves forward.
CREATE TRIGGER chain_state_forward BEFORE UPDATE ON chain_state
WHEN NEW.seq < OLD.seq
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;

CREATE TRIGGER chain_state_kept BEFORE DELETE ON chain_state
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;

-- Signed checkpoints (stele_core::checkpoint).
CREATE TABLE checkpoints (
    org_id       INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    chain_head   BLOB NOT NULL,
    merkle_root  BLOB NOT NULL,
    created_ms   INTEGER NOT NULL,
    key_id       TEXT NOT NULL,
    signature    TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER checkpoints_immutable BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are immutable');
END;
CREATE TRIGGER checkpoints_undeletable BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are immutable');
END;

CREATE UNIQUE INDEX entries_seq ON entries (org_id, seq);

-- Hashed filter terms per entry (rowid = entries.pk); see terms.rs.
CREATE VIRTUAL TABLE entry_terms USING fts5(
    terms, tokenize = 'ascii', content = '', detail = 'none',
    columnsize = 0
);
INSERT INTO entry_terms (entry_terms, rank) VALUES ('hashsize', 16777216);
INSERT INTO entry_terms (entry_terms, rank) VALUES ('automerge', 8);
INSERT INTO entry_terms (entry_terms, rank) VALUES ('crisismerge', 32);

CREATE VIRTUAL TABLE entries_fts USING fts5(
    description, tokenize = 'trigram', content = '', detail = 'none',
    columnsize = 0
);
INSERT INTO entries_fts (entries_fts, rank) VALUES ('hashsize', 16777216);
INSERT INTO entries_fts (entries_fts, rank) VALUES ('automerge', 8);
INSERT INTO entries_fts (entries_fts, rank) VALUES ('crisismerge', 32);

CREATE TABLE idempotency (
    org_id       INTEGER NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  BLOB,
    receipts     TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (org_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_age ON idempotency (created_ms);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
