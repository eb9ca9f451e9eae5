//! Deleting an organization (`Tenancy::delete_org`): mark it deleted, remove what is not the
//! trail, then the trail in batches of [`BATCH`] entries (each batch its own transaction, with the
//! organization in `org_deletion_gate` while it runs), then what anchors the chain, and stamp the
//! tombstone `purged_ms`.

use rusqlite::{OptionalExtension, Transaction, params};
use stele_core::Seq;
use stele_core::time::Millis;
use stele_store::{OrgKey, Result, StoreError};

use crate::error::map_err;
use crate::retention::forget_in_search;

/// Entries removed per transaction: a batch holds the writer for tens of milliseconds.
pub const BATCH: i64 = 2000;

/// Marks the organization deleted (if it is not yet) and removes everything but its trail.
pub fn begin(tx: &Transaction<'_>, org: OrgKey, now: Millis) -> Result<()> {
    let found: Option<bool> = tx
        .query_row(
            "SELECT platform FROM orgs WHERE key = ?",
            [org.get()],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_err)?;
    match found {
        None => return Err(StoreError::NotFound),
        Some(true) => {
            return Err(StoreError::Conflict(
                "the platform's own organization cannot be deleted".into(),
            ));
        }
        Some(false) => {}
    }
    // The name and external id are freed at once, for a new organization to take.
    tx.execute(
        "UPDATE orgs SET deleted_ms = coalesce(deleted_ms, ?2), name = 'deleted:' || id,
                         external_id = NULL
         WHERE key = ?1",
        params![org.get(), now],
    )
    .map_err(map_err)?;
    let k = org.get();
    for sql in [
        "DELETE FROM sessions WHERE member_key IN (SELECT key FROM members WHERE org_key = ?)",
        "DELETE FROM members WHERE org_key = ?",
        "DELETE FROM api_keys WHERE org_key = ?",
        "DELETE FROM export_links WHERE job_id IN (SELECT id FROM export_jobs WHERE org_id = ?)",
        "DELETE FROM export_jobs WHERE org_id = ?",
        "DELETE FROM idempotency WHERE org_id = ?",
        "DELETE FROM org_settings WHERE org_id = ?",
        "DELETE FROM org_facets WHERE org_id = ?",
        "DELETE FROM print_log WHERE org_id = ?",
        "DELETE FROM print_log_ids WHERE org_id = ?",
        "DELETE FROM action_schemas WHERE org_id = ?",
        "DELETE FROM retraced_saved_exports WHERE org_id = ?",
        "DELETE FROM retraced_api_tokens WHERE org_id = ?",
        "DELETE FROM stream_cursors WHERE org_id = ?1
         OR stream_id IN (SELECT id FROM streams WHERE org_id = ?1)",
        "DELETE FROM streams WHERE org_id = ?",
    ] {
        tx.execute(sql, [k]).map_err(map_err)?;
    }
    // Events' own keys lead with their day: one range of this organization's per day kept.
    let mut after = i64::MIN;
    while let Some(day) = tx
        .query_row(
            "SELECT min(day) FROM event_keys WHERE day > ?",
            [after],
            |r| r.get::<_, Option<i64>>(0),
        )
        .map_err(map_err)?
    {
        tx.execute(
            "DELETE FROM event_keys WHERE day = ? AND org_id = ?",
            [day, k],
        )
        .map_err(map_err)?;
        after = day;
    }
    // People who were members of this organization alone go with it, as they do when their last
    // membership is removed: no password hash outlives every organization that knew them.
    tx.execute(
        "DELETE FROM people
         WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.person_key = people.key)",
        [],
    )
    .map_err(map_err)?;
    Ok(())
}

/// Removes up to [`BATCH`] of the organization's entries (and queues the removal of their search
/// rows); returns how many.
pub fn remove_batch(tx: &Transaction<'_>, org: OrgKey) -> Result<u64> {
    tx.execute(
        "INSERT OR IGNORE INTO org_deletion_gate (org_id) VALUES (?)",
        [org.get()],
    )
    .map_err(map_err)?;
    let rows: Vec<(i64, Seq)> = tx
        .prepare_cached("SELECT pk, seq FROM entries WHERE org_id = ? ORDER BY pk LIMIT ?")
        .and_then(|mut s| {
            s.query_map(params![org.get(), BATCH], |r| {
                Ok((r.get(0)?, Seq::new(r.get(1)?)))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_err)?;
    for (pk, seq) in &rows {
        forget_in_search(tx, org, *pk, *seq)?;
        tx.prepare_cached("DELETE FROM entries WHERE pk = ?")
            .and_then(|mut s| s.execute([pk]))
            .map_err(map_err)?;
    }
    tx.execute("DELETE FROM org_deletion_gate", [])
        .map_err(map_err)?;
    Ok(rows.len() as u64)
}

/// Removes what anchors the chain (pruned entries, checkpoints, the chain's state) and stamps
/// the tombstone.
pub fn finish(tx: &Transaction<'_>, org: OrgKey, now: Millis) -> Result<()> {
    let k = org.get();
    tx.execute(
        "INSERT OR IGNORE INTO org_deletion_gate (org_id) VALUES (?)",
        [k],
    )
    .map_err(map_err)?;
    for sql in [
        "DELETE FROM pruned_entries WHERE org_id = ?",
        "DELETE FROM merkle_subtrees WHERE org_id = ?",
        "DELETE FROM merkle_subtrees_to_fill WHERE org_id = ?",
        "DELETE FROM verified_points WHERE org_id = ?",
        "DELETE FROM checkpoints WHERE org_id = ?",
        "DELETE FROM chain_state WHERE org_id = ?",
    ] {
        tx.execute(sql, [k]).map_err(map_err)?;
    }
    tx.execute("DELETE FROM org_deletion_gate", [])
        .map_err(map_err)?;
    tx.execute(
        "UPDATE orgs SET purged_ms = ? WHERE key = ?",
        params![now, k],
    )
    .map_err(map_err)?;
    Ok(())
}
