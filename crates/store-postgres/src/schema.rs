//! The PostgreSQL schema and its migrations (`migrations/NNN_name.sql`, one file each), applied
//! in order and recorded in `stele_schema_version`.
//!
//! Layout choices, and why:
//! - `entries.pk` is the sort key itself, as in the SQLite backend: `occurred_ms << 21 | n`,
//!   where `n` counts the entries of the same millisecond in insertion order. So
//!   `ORDER BY pk DESC` is newest first by `occurred_at` with ties in `seq` order, a `from`/`to`
//!   range is a `pk` range, and the public id is the `pk` written as a UUIDv7 (`codec.rs`): a
//!   lookup by id is a primary-key lookup. `pk` is unique across organizations.
//! - One B-tree per single-valued filter, `(org_id, <column>, pk)`: an equality filter walks
//!   its index backwards in `pk` order, so a first page reads about as many index entries as it
//!   returns. (PostgreSQL's indexes are ordinary B-trees written through shared buffers and the
//!   WAL with full-page images only after a checkpoint, so the write amplification that made the
//!   SQLite backend fold its filters into one FTS5 table is much smaller here.)
//! - Multi-valued identifiers (the entity id and every bulk `entity_ids` value; the actor's id and
//!   email; the IP) live in `entry_keys (org_id, kind, value, pk)`, one row per value, so an
//!   entity-id filter matches bulk ids and an actor filter matches id or email with one index.
//!   Erasure rewrites the actor and IP rows of the entries it pseudonymises, so this table is not
//!   guarded by the immutability triggers: it is an index, not the record.
//! - Filter columns use the `"C"` collation: comparisons are plain byte comparisons (cheaper than
//!   the database's locale), facets sort like Rust strings, and `LIKE 'prefix%'` (detailed-action
//!   prefixes) can use the B-tree.
//! - Description search: a `pg_trgm` GIN index over `lower(description COLLATE stele_fold)`.
//!   `stele_fold` is an ICU collation when the server has ICU, whose lower-casing is the full
//!   Unicode mapping Rust's `str::to_lowercase` uses (final sigma, dotted I), so the query can
//!   lower-case the needle in Rust and compare with `LIKE`; without ICU it falls back to the
//!   libc `C.UTF-8` locale, then to `C` (ASCII only). `LIKE` always rechecks the real text, so
//!   the trigram index only narrows.
//! - `body` and `personal` are `text`, not `jsonb`: `jsonb` would rewrite numbers and key order,
//!   and the chain hashes the event exactly as serde_json reads it back from this text.
//! - Immutability: triggers refuse every UPDATE, DELETE and TRUNCATE of `entries` except the
//!   erasure update (it sets `erased` and changes only `personal` and `salt`) and a retention
//!   run's DELETE of expired entries (migration 3, `retention.rs`), every UPDATE, DELETE and
//!   TRUNCATE of `checkpoints` and of `pruned_entries`, and a `chain_state` that moves backwards
//!   or is deleted.
//!
//! - Time partitioning: `entries` and `entry_keys` are partitioned by range of `pk`, that is by
//!   occurrence time, one partition per month (`partitions.rs` makes them ahead of time). Their
//!   primary keys contain `pk`, as a partitioned table's unique indexes must; the `(org_id, seq)`
//!   index is therefore not unique, the per-organization chain lock keeping `seq` unique.
//! - Every table leads with the organization, the natural distribution column for Citus
//!   (docs/scaling.md).

use tokio_postgres::Client;

use crate::error::{R, other};

/// Session-level advisory lock held while migrating, so several processes starting at once
/// apply each migration exactly once. (`STELEMIG` in ASCII.)
const MIGRATION_LOCK: i64 = 0x5354_454c_454d_4947;

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
    // organization in `print_log_ids`, which only grows, so an id is never reused. Each index
    // ends in `(created_ms, id)`, the list's order, so a first page newest first, with or
    // without one of the exact filters, is an index walk that stops after the page.
    include_str!("../migrations/006_print_log.sql"),
    // 7: platforms (`Tenancy`): an external id per organization (the platform's own tenant id,
    // unique), and the flag of the platform's own organization (at most one).
    include_str!("../migrations/007_platforms.sql"),
    // 8: deleting an organization (`Tenancy::delete_org`): a mark on the organization, and guards
    // that let its rows go only inside a transaction that set `stele.deleting_org` to it.
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
    // 12: erasure and redaction rewrite an entry's description, body and seal (`erasure.rs`).
    include_str!("../migrations/012_rewritable_values.sql"),
    // 13: the months a rewrite left old row versions in, until its clean-up ran (`erasure.rs`).
    include_str!("../migrations/013_pending_cleanups.sql"),
    // 14: stored Merkle subtrees (`subtrees.rs`), so proofs read O(log n) hashes; the chains
    // already there get theirs from the first process that opens the database.
    include_str!("../migrations/014_merkle_subtrees.sql"),
    // 15: where each organization's chain was last verified to (`integrity.rs`), so the next
    // verification checks only what came after. Bookkeeping, not part of the record.
    include_str!("../migrations/015_verified_points.sql"),
    // 16: no statistics for the entries' wide columns that no query filters on, so the upkeep's
    // `ANALYZE` of a growing month costs about half as much.
    include_str!("../migrations/016_unanalysed_columns.sql"),
    // 17: log streams (`streams.rs`): their configuration, cursors and leases.
    include_str!("../migrations/017_streams.sql"),
    // 18: platform-wide log streams, with a cursor per organization (`stream_cursors`).
    include_str!("../migrations/018_platform_streams.sql"),
];

/// Applies the migrations this database has not seen yet. Safe to run from several processes at
/// once: they take turns on an advisory lock.
pub async fn migrate(client: &mut Client) -> R<()> {
    migrate_up_to(client, MIGRATIONS.len()).await
}

/// [`migrate`], stopping after migration `version` (tests of an upgrade start from an older
/// schema this way).
pub async fn migrate_up_to(client: &mut Client, version: usize) -> R<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply(client, version).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result?;
    unlocked?;
    Ok(())
}

async fn apply(client: &mut Client, up_to: usize) -> R<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS stele_schema_version (
                 version     integer PRIMARY KEY,
                 applied_at  timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let current: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM stele_schema_version",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if current > known {
        return Err(other(format!(
            "the database is at schema version {current}, but this Stele knows only up to \
             {known}: upgrade Stele"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(up_to)
        .skip(current as usize)
    {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO stele_schema_version (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
