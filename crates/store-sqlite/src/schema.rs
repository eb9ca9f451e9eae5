//! The SQLite schema and its migrations, applied in order by `PRAGMA user_version`.
//!
//! Layout choices, and why:
//! - `entries` keeps the columns that filters touch as small values: the low-cardinality strings
//!   (action, detailed action, channel, entity type) are dictionary-encoded integers (`dict`), so
//!   their indexes stay narrow. Everything else of an entry sits in one JSON `body`.
//! - Each filter has an index `(org_id, <column>, occurred_ms)` whose implicit rowid tail gives the
//!   newest-first order for free, so a first page reads only the rows it returns.
//! - `refs` holds the identifiers an entry may be found by more than once: every entity id it names
//!   (its primary entity and bulk `entity_ids`) and its actor's id and email, so the entity-ID and
//!   actor filters are one ordered index range each, whichever identifier matched.
//! - Description search uses a contentless FTS5 trigram index (`detail=none` keeps it small and
//!   cheap to write); its hits are candidates that the query re-checks against the real text.
//! - `pk` order equals `seq` order within an organization (one writer assigns both), which is what
//!   lets `(occurred_ms, pk)` index order stand in for `(occurred_at, seq)` in cursors.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the foundation.
    r#"
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
    uid              BLOB NOT NULL,
    occurred_ms      INTEGER NOT NULL,
    recorded_ms      INTEGER NOT NULL,
    action           INTEGER NOT NULL,
    detailed_action  INTEGER,
    channel          INTEGER NOT NULL,
    actor_type       INTEGER NOT NULL,
    outcome          INTEGER NOT NULL,
    entity_type      INTEGER,
    correlation_id   TEXT,
    ip               TEXT,
    description      TEXT,
    body             TEXT NOT NULL
);

CREATE UNIQUE INDEX entries_seq ON entries (org_id, seq);
CREATE UNIQUE INDEX entries_uid ON entries (uid);
CREATE INDEX entries_time ON entries (org_id, occurred_ms);
CREATE INDEX entries_action ON entries (org_id, action, occurred_ms);
CREATE INDEX entries_detailed_action ON entries (org_id, detailed_action, occurred_ms)
    WHERE detailed_action IS NOT NULL;
CREATE INDEX entries_channel ON entries (org_id, channel, occurred_ms);
CREATE INDEX entries_actor_type ON entries (org_id, actor_type, occurred_ms);
CREATE INDEX entries_failures ON entries (org_id, occurred_ms) WHERE outcome = 1;
CREATE INDEX entries_entity_type ON entries (org_id, entity_type, occurred_ms)
    WHERE entity_type IS NOT NULL;
CREATE INDEX entries_correlation ON entries (org_id, correlation_id, occurred_ms)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX entries_ip ON entries (org_id, ip, occurred_ms) WHERE ip IS NOT NULL;

-- Identifiers an entry can be found by that may be several per entry: kind 1 is an entity id (the
-- primary entity's and every bulk id), kind 2 an actor's id or email.
CREATE TABLE refs (
    org_id       INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    value        TEXT NOT NULL,
    occurred_ms  INTEGER NOT NULL,
    pk           INTEGER NOT NULL,
    PRIMARY KEY (org_id, kind, value, occurred_ms, pk)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE entries_fts USING fts5(
    description, tokenize = 'trigram', content = '', contentless_delete = 1, detail = 'none'
);

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
"#,
];

/// Dictionary kinds in `dict.kind`.
pub const DICT_ACTION: i64 = 1;
pub const DICT_DETAILED_ACTION: i64 = 2;
pub const DICT_CHANNEL: i64 = 3;
pub const DICT_ENTITY_TYPE: i64 = 4;
pub const DICT_ACTOR_TYPE: i64 = 5;

/// Kinds in `refs.kind`.
pub const REF_ENTITY: i64 = 1;
pub const REF_ACTOR: i64 = 2;

/// Connection settings shared by the writer and the readers.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         -- FULL syncs the WAL on every commit: an acknowledgement means the entry is on disk.
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;
         PRAGMA mmap_size = 268435456;",
    )
}

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Read-only connections need no journal settings, only patience and cache.
pub fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;
         PRAGMA mmap_size = 268435456;",
    )
}
