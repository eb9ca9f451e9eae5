//! The SQLite schema and its migrations (`migrations/NNN_name.sql`, one file each), applied in
//! order by `PRAGMA user_version`.
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

/// The migrations in order: the one at index `i` brings a database to schema version `i + 1`,
/// which databases record, so a file released is never edited or renumbered; a change of the
/// schema is a new file at the end.
const MIGRATIONS: &[&str] = &[
    // 1: the foundation.
    include_str!("../migrations/001_foundation.sql"),
    // 2: which key signs this database's checkpoints, claimed by the first server to start.
    include_str!("../migrations/002_signing_key.sql"),
    // 3: settings and retention.
    include_str!("../migrations/003_settings_and_retention.sql"),
    // 4: export jobs (`export_jobs.rs`). Jobs are mutable bookkeeping, not part of the record;
    // the export itself is recorded in the trail as an entry. Only a link token's SHA-256 is kept.
    include_str!("../migrations/004_export_jobs.sql"),
    // 5: members and sessions (`members.rs`): who signs in to the console. `email_key` is the
    // email trimmed and lowercased by Stele (`stele_store::email_key`), unique across all
    // organizations because signing in names no organization. Passwords are kept only as Argon2id
    // PHC strings, session tokens only as their SHA-256.
    include_str!("../migrations/005_members_and_sessions.sql"),
    // 6: the print log (`print_log.rs`): Bambuddy-compatible rows that their users reclassify
    // and delete. They are not audit entries and none of the trail's triggers guard them; every
    // change of them appends its own audit entry in the same transaction instead. Ids count per
    // organization in `print_log_ids`, which only grows, so an id is never reused. The table is
    // clustered by (org_id, id); each index ends in `created_ms` (and, as in every index of a
    // WITHOUT ROWID table, the key), so a first page newest first, with or without one of the
    // exact filters, reads only the rows it returns.
    include_str!("../migrations/006_print_log.sql"),
    // 7: platforms (`Tenancy`): an external id per organization (the platform's own tenant id,
    // unique), and the flag of the platform's own organization (at most one).
    include_str!("../migrations/007_platforms.sql"),
    // 8: deleting an organization (`Tenancy::delete_org`): a mark on the organization, and a gate
    // the trail's guards let its rows go through, only while a deletion holds it.
    include_str!("../migrations/008_organization_deletion.sql"),
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
