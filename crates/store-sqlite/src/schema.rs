//! The SQLite schema and its migrations, applied in order by `PRAGMA user_version`.
//!
//! Layout choices, and why:
//! - `entries.pk` is the sort key itself: `occurred_ms << 21 | n`, where `n` counts entries
//!   recorded for the same millisecond. Newest first is `ORDER BY pk DESC`, a time range is a
//!   `pk` range, and within a millisecond `n` follows insertion order, which is `seq` order.
//! - Exact-match filters do not get one B-tree index each. Random keys (entity ids, actors,
//!   correlation ids, IPs) would dirty a different index page for almost every entry, and every
//!   dirty page is written to the WAL at each commit, so ingest would be bound by write
//!   amplification. Instead each entry's filterable values become hashed terms in one contentless
//!   FTS5 table (`entry_terms`, see `terms.rs`). FTS5 buffers new terms in memory and writes them
//!   as sorted segments that it merges in the background, like an LSM tree; its posting lists are
//!   ordered by rowid, which is `pk`, so `MATCH ... ORDER BY rowid DESC LIMIT n` is a first page.
//! - The one B-tree index that remains, `(org_id, seq)` for the chain, grows at its right edge;
//!   even unfiltered pages come from the term index, through the organization's own term. An entry's public id is its `pk` written as a
//!   UUIDv7 (`codec::entry_id`), so lookups by id need no index of their own.
//! - Low-cardinality strings (action, detailed action, channel, entity type) are integers from a
//!   dictionary table (`dict`); everything an index never needs sits in one JSON `body`.
//! - Both FTS5 tables are contentless without per-row sizes (`columnsize = 0`), the cheapest form
//!   to write. Removing an entry's terms (retention) uses FTS5's `delete` command with the
//!   original text, which `entries` still holds and `terms.rs` can recompute.
//! - Description search uses a second contentless FTS5 table with the trigram tokenizer
//!   (`detail=none`: small and cheap to write); its hits are candidates that the query re-checks.

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
"#,
    // 2: which key signs this database's checkpoints, claimed by the first server to start.
    r#"
CREATE TABLE signing_key (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key_id      text NOT NULL,
    claimed_ms  bigint NOT NULL
);
"#,
    // 3: settings and retention.
    r#"
CREATE TABLE org_settings (
    org_id      INTEGER PRIMARY KEY,
    settings    TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- A pruned entry's place in the chain: its seq and hash, so that the entries after it, the
-- checkpoints and the Merkle proofs still verify (retention.rs).
CREATE TABLE pruned_entries (
    org_id  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    hash    BLOB NOT NULL,
    PRIMARY KEY (org_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER pruned_entries_immutable BEFORE UPDATE ON pruned_entries
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;
CREATE TRIGGER pruned_entries_kept BEFORE DELETE ON pruned_entries
BEGIN
    SELECT RAISE(ABORT, 'the chain only moves forward');
END;

-- Opened by a retention run inside its own transaction (and closed before it commits): while
-- a row is here, entries of that organization older than `below_pk` may be deleted. Nothing
-- else can delete an entry.
CREATE TABLE retention_gate (
    org_id    INTEGER NOT NULL,
    below_pk  INTEGER NOT NULL
);
DROP TRIGGER entries_undeletable;
CREATE TRIGGER entries_undeletable BEFORE DELETE ON entries
WHEN NOT EXISTS (
    SELECT 1 FROM retention_gate g WHERE g.org_id = OLD.org_id AND OLD.pk < g.below_pk
)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are immutable');
END;

-- When each scheduled job last ran (claimed by one server per due time).
CREATE TABLE scheduled_runs (
    name    TEXT PRIMARY KEY,
    due_ms  INTEGER NOT NULL
);
"#,
    // 4: export jobs (`export_jobs.rs`). Jobs are mutable bookkeeping, not part of the record;
    // the export itself is recorded in the trail as an entry. Only a link token's SHA-256 is kept.
    r#"
CREATE TABLE export_jobs (
    id            TEXT PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES orgs (key),
    format        TEXT NOT NULL,
    filters       TEXT NOT NULL,
    runner        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'error', 'expired')),
    created_ms    INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL,
    finished_ms   INTEGER,
    entries       INTEGER,
    bytes         INTEGER,
    expires_ms    INTEGER,
    error         TEXT
);
CREATE INDEX export_jobs_state ON export_jobs (state);

CREATE TABLE export_links (
    token_hash  BLOB PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    created_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX export_links_job ON export_links (job_id);
"#,
    // 5: members and sessions (`members.rs`): who signs in to the console. `email_key` is the
    // email trimmed and lowercased by Stele (`stele_store::email_key`), unique across all
    // organizations because signing in names no organization. Passwords are kept only as Argon2id
    // PHC strings, session tokens only as their SHA-256.
    r#"
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
"#,
    // 6: the print log (`print_log.rs`): Bambuddy-compatible rows that their users reclassify
    // and delete. They are not audit entries and none of the trail's triggers guard them; every
    // change of them appends its own audit entry in the same transaction instead. Ids count per
    // organization in `print_log_ids`, which only grows, so an id is never reused. The table is
    // clustered by (org_id, id); each index ends in `created_ms` (and, as in every index of a
    // WITHOUT ROWID table, the key), so a first page newest first, with or without one of the
    // exact filters, reads only the rows it returns.
    r#"
CREATE TABLE print_log (
    org_id               INTEGER NOT NULL REFERENCES orgs (key),
    id                   INTEGER NOT NULL,
    created_ms           INTEGER NOT NULL,
    status               TEXT NOT NULL CHECK (status IN
                             ('completed', 'failed', 'stopped', 'cancelled', 'skipped')),
    failure_reason       TEXT CHECK (failure_reason IN
                             ('adhesionFailure', 'spaghettiDetached', 'layerShift',
                              'cloggedNozzle', 'filamentRunout', 'warping', 'stringing',
                              'underExtrusion', 'powerFailure', 'userCancelled', 'other')),
    print_name           TEXT,
    printer_id           INTEGER,
    printer_name         TEXT,
    started_ms           INTEGER,
    completed_ms         INTEGER,
    duration_seconds     INTEGER,
    filament_type        TEXT,
    filament_color       TEXT,
    filament_used_grams  REAL,
    cost                 REAL,
    energy_kwh           REAL,
    energy_cost          REAL,
    created_by_username  TEXT,
    archive_id           INTEGER,
    thumbnail_path       TEXT,
    PRIMARY KEY (org_id, id)
) WITHOUT ROWID;
CREATE INDEX print_log_created ON print_log (org_id, created_ms);
CREATE INDEX print_log_status ON print_log (org_id, status, created_ms);
CREATE INDEX print_log_printer ON print_log (org_id, printer_id, created_ms);
CREATE INDEX print_log_user ON print_log (org_id, created_by_username, created_ms);

CREATE TABLE print_log_ids (
    org_id   INTEGER PRIMARY KEY REFERENCES orgs (key),
    last_id  INTEGER NOT NULL
);
"#,
];

/// Dictionary kinds in `dict.kind`.
pub const DICT_ACTION: i64 = 1;
pub const DICT_DETAILED_ACTION: i64 = 2;
pub const DICT_CHANNEL: i64 = 3;
pub const DICT_ENTITY_TYPE: i64 = 4;
pub const DICT_ACTOR_TYPE: i64 = 5;

/// How long a connection waits for a lock another connection holds.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Makes `conn` wait for a lock another connection holds by retrying every millisecond, for up
/// to [`BUSY_TIMEOUT`]. SQLite's own busy timeout backs off to 100 ms between tries, so a writer
/// in another process that lets go of the lock for a few milliseconds between its transactions
/// (`stele prune` next to `stele serve`, see `retention::PRUNE_PAUSE`) would be missed again
/// and again, and appends would stall behind it.
pub fn wait_when_busy(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(retry_every_millisecond))
}

fn retry_every_millisecond(tries: i32) -> bool {
    const TRY_EVERY: std::time::Duration = std::time::Duration::from_millis(1);
    let waited = TRY_EVERY * u32::try_from(tries).unwrap_or(u32::MAX);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(TRY_EVERY);
    true
}

/// Connection settings shared by the writer and the readers.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    wait_when_busy(conn)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         -- FULL syncs the WAL on every commit: an acknowledgement means the entry is on disk.
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;
         PRAGMA mmap_size = 268435456;
         -- The checkpointer thread (lib.rs) moves the WAL into the database, off the writer's
         -- path; the writer never stops to checkpoint.
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;",
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
    wait_when_busy(conn)?;
    conn.execute_batch(
        "PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;
         PRAGMA mmap_size = 268435456;",
    )
}
