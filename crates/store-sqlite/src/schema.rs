//! The SQLite schema and its migrations (`migrations/NNN_name.sql`, one file each), applied in
//! order by `PRAGMA user_version`.
//!
//! Layout choices, and why:
//! - `entries.pk` is the sort key itself: `occurred_ms << 21 | n`, where `n` counts entries
//!   recorded for the same millisecond. Newest first is `ORDER BY pk DESC`, a time range is a
//!   `pk` range, and within a millisecond `n` follows insertion order, which is `seq` order.
//! - The search index (the two FTS5 tables below) lives in a file of its own beside this one and
//!   is written by a thread of its own behind the commit (`search.rs`): the acknowledged
//!   transaction holds only the entry, its `(org_id, seq)` index, the chain and a row of
//!   `search_queue`.
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
//! - Both FTS5 tables are contentless (they keep no copy of the text) with `contentless_delete`,
//!   so retention and erasure remove an entry's rows by rowid, without its original text.
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
    // 9: one person, many organizations (`members.rs`): `people` (one per `email_key`, with the
    // name and password hash, because sign-in is per person) and `members` as memberships (role,
    // disabled, at most one per person and organization). Existing members become one person
    // each.
    include_str!("../migrations/009_people.sql"),
    // 10: action schemas (`action_schemas.rs`): the WorkOS door's per-action schema versions,
    // numbered per organization and action.
    include_str!("../migrations/010_action_schemas.sql"),
    // 11: what Retraced's embedded viewer keeps (`retraced_viewer.rs`): saved exports, and API
    // tokens as hashes.
    include_str!("../migrations/011_retraced_viewer.sql"),
    include_str!("../migrations/012_rewritable_values.sql"),
    // 13: the search index leaves this file for one of its own, written behind the commit
    // (`search.rs`); `search_queue` lists what it has yet to take in.
    include_str!("../migrations/013_search_index_file.sql"),
    // 14: stored Merkle subtrees (`subtrees.rs`), so proofs read O(log n) hashes; the chains
    // already there get theirs when the store opens.
    include_str!("../migrations/014_merkle_subtrees.sql"),
    // 15: where each organization's chain was last verified to (`integrity.rs`), so the next
    // verification checks only what came after. Bookkeeping, not part of the record.
    include_str!("../migrations/015_verified_points.sql"),
    // 16: events' own idempotency keys in a table of their own (`writer.rs`), small rows grouped
    // by day, swept without an index by time.
    include_str!("../migrations/016_event_keys.sql"),
    // 17: log streams (`streams.rs`): their configuration, cursors and leases.
    include_str!("../migrations/017_streams.sql"),
    // 18: platform-wide log streams, with a cursor per organization (`stream_cursors`).
    include_str!("../migrations/018_platform_streams.sql"),
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

/// Connection settings shared by the writer and the readers; `mmap_bytes` of the file are read
/// through a memory map.
pub fn configure(conn: &Connection, mmap_bytes: u64) -> rusqlite::Result<()> {
    wait_when_busy(conn)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         -- FULL syncs the WAL on every commit: an acknowledgement means the entry is on disk.
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;
         -- The checkpointer thread (lib.rs) moves the WAL into the database, off the writer's
         -- path; the writer never stops to checkpoint.
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    conn.pragma_update(None, "mmap_size", mmap_bytes)
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

/// Read-only connections need no journal settings, only patience, cache and the memory map.
pub fn configure_reader(conn: &Connection, mmap_bytes: u64) -> rusqlite::Result<()> {
    wait_when_busy(conn)?;
    conn.execute_batch(
        "PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;",
    )?;
    conn.pragma_update(None, "mmap_size", mmap_bytes)
}

#[cfg(test)]
mod tests {
    use stele_store::{Members, SessionHash};

    use super::*;
    use crate::{SqliteOptions, SqliteStore};

    /// Migration 9 rebuilds `members` (SQLite cannot drop its UNIQUE email column), and sessions
    /// reference members ON DELETE CASCADE: a database of migration 8 with members and live
    /// sessions keeps all of them, each member becoming a person of their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn people_split_off_members_and_live_sessions_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            configure(&conn, 0).unwrap();
            for (i, sql) in MIGRATIONS.iter().enumerate().take(8) {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.pragma_update(None, "user_version", i + 1).unwrap();
                tx.commit().unwrap();
            }
            conn.execute_batch(
                "INSERT INTO orgs (key, id, name, created_ms) VALUES
                     (101, 'org_a', 'a', 1), (102, 'org_b', 'b', 1);
                 INSERT INTO members (key, id, org_key, email, email_key, name, role,
                                      password_hash, created_ms, disabled) VALUES
                     (1, 'mem_ada', 101, 'Ada@Example.com', 'ada@example.com', 'Ada', 'owner',
                      '$argon2id$ada', 10, 0),
                     (2, 'mem_bob', 102, 'bob@example.com', 'bob@example.com', NULL, 'auditor',
                      '$argon2id$bob', 20, 1);
                 INSERT INTO sessions (token_hash, member_key, created_ms, expires_ms,
                                       last_seen_ms) VALUES
                     (x'0101010101010101010101010101010101010101010101010101010101010101', 1,
                      100, 9000000000000, 100),
                     (x'0202020202020202020202020202020202020202020202020202020202020202', 2,
                      100, 9000000000000, 100);",
            )
            .unwrap();
        }
        let store = SqliteStore::open_with(&path, SqliteOptions::default()).unwrap();
        let ada = store.memberships_by_email("ada@example.com").await.unwrap();
        assert_eq!(ada.len(), 1);
        let ada = &ada[0];
        assert_eq!(
            (
                ada.id.as_str(),
                ada.org_id.as_str(),
                ada.email.as_str(),
                ada.name.as_deref(),
                ada.role.as_str(),
                ada.password_hash.as_str(),
                ada.created_at,
                ada.disabled
            ),
            (
                "mem_ada",
                "org_a",
                "Ada@Example.com",
                Some("Ada"),
                "owner",
                "$argon2id$ada",
                10,
                false
            )
        );
        let session = store
            .session(&SessionHash([1; 32]), 200)
            .await
            .unwrap()
            .expect("the live session survived the rebuild");
        assert_eq!(session.member.id, "mem_ada");
        assert_eq!(session.last_seen_at, 100);
        let bob = store.memberships_by_email("bob@example.com").await.unwrap();
        assert_eq!(
            (bob[0].id.as_str(), bob[0].disabled, bob[0].name.as_deref()),
            ("mem_bob", true, None)
        );
        assert_eq!(
            store.session(&SessionHash([2; 32]), 200).await.unwrap(),
            None,
            "still disabled"
        );
        // The rebuilt tables keep their constraints: sessions still go with their member.
        let removed = store
            .remove_member(ada.org, "mem_ada")
            .await
            .expect("remove after migrating");
        assert_eq!(removed.id, "mem_ada");
        assert_eq!(
            store.session(&SessionHash([1; 32]), 200).await.unwrap(),
            None
        );
        let conn = Connection::open(&path).unwrap();
        let (sessions, people): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM people)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((sessions, people), (1, 1));
        let problems: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(problems, 0);
    }
}
