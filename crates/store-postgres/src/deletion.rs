//! Deleting an organization (`Tenancy::delete_org`): mark it deleted, remove what is not the
//! trail, then the trail in batches of [`BATCH`] entries (each batch its own transaction, which
//! names the organization in `stele.deleting_org` so the trail's guards let its rows go), then
//! what anchors the chain, and stamp the tombstone `purged_ms`.

use stele_core::time::Millis;
use stele_store::{OrgKey, StoreError};

use crate::error::{Error, R};
use crate::pool::{Conn, Tx};

/// Entries removed per transaction.
pub const BATCH: i64 = 5000;

/// Lets this transaction delete the organization's guarded rows.
async fn open_gate(tx: &mut Tx<'_>, org: OrgKey) -> R<()> {
    tx.query(
        "SELECT set_config('stele.deleting_org', $1, true)",
        &[&org.get().to_string()],
    )
    .await?;
    Ok(())
}

/// Marks the organization deleted (if it is not yet) and removes everything but its trail.
pub async fn begin(conn: &mut Conn, org: OrgKey, now: Millis) -> R<()> {
    let mut tx = conn.transaction().await?;
    let found = tx
        .query_opt(
            "SELECT platform FROM orgs WHERE key = $1 FOR UPDATE",
            &[&org.get()],
        )
        .await?;
    match found.map(|r| r.try_get::<_, bool>(0)).transpose()? {
        None => return Err(Error::Store(StoreError::NotFound)),
        Some(true) => {
            return Err(Error::Store(StoreError::Conflict(
                "the platform's own organization cannot be deleted".into(),
            )));
        }
        Some(false) => {}
    }
    // The name and external id are freed at once, for a new organization to take.
    tx.execute(
        "UPDATE orgs SET deleted_ms = coalesce(deleted_ms, $2), name = 'deleted:' || id,
                         external_id = NULL
         WHERE key = $1",
        &[&org.get(), &now],
    )
    .await?;
    for sql in [
        "DELETE FROM sessions WHERE member_key IN (SELECT key FROM members WHERE org_key = $1)",
        "DELETE FROM members WHERE org_key = $1",
        "DELETE FROM api_keys WHERE org_key = $1",
        "DELETE FROM export_links WHERE job_id IN (SELECT id FROM export_jobs WHERE org_id = $1)",
        "DELETE FROM export_jobs WHERE org_id = $1",
        "DELETE FROM idempotency WHERE org_id = $1",
        "DELETE FROM org_settings WHERE org_id = $1",
        "DELETE FROM facets WHERE org_id = $1",
        "DELETE FROM print_log WHERE org_id = $1",
        "DELETE FROM print_log_ids WHERE org_id = $1",
        "DELETE FROM action_schemas WHERE org_id = $1",
        "DELETE FROM retraced_saved_exports WHERE org_id = $1",
        "DELETE FROM retraced_api_tokens WHERE org_id = $1",
        "DELETE FROM stream_cursors WHERE org_id = $1
         OR stream_id IN (SELECT id FROM streams WHERE org_id = $1)",
        "DELETE FROM streams WHERE org_id = $1",
    ] {
        tx.execute(sql, &[&org.get()]).await?;
    }
    // People who were members of this organization alone go with it, as they do when their last
    // membership is removed: no password hash outlives every organization that knew them.
    tx.execute(
        "DELETE FROM people
         WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.person_key = people.key)",
        &[],
    )
    .await?;
    tx.commit().await
}

/// Removes up to [`BATCH`] of the organization's entries (and their filter keys); returns how
/// many.
pub async fn remove_batch(conn: &mut Conn, org: OrgKey) -> R<u64> {
    let mut tx = conn.transaction().await?;
    open_gate(&mut tx, org).await?;
    let removed = tx
        .execute(
            "WITH doomed AS (
                 SELECT pk FROM entries WHERE org_id = $1 ORDER BY pk LIMIT $2
             ),
             keys AS (
                 DELETE FROM entry_keys WHERE org_id = $1 AND pk IN (SELECT pk FROM doomed)
             )
             DELETE FROM entries WHERE org_id = $1 AND pk IN (SELECT pk FROM doomed)",
            &[&org.get(), &BATCH],
        )
        .await?;
    tx.commit().await?;
    Ok(removed)
}

/// Removes what anchors the chain (pruned entries, checkpoints, the chain's state) and stamps
/// the tombstone.
pub async fn finish(conn: &mut Conn, org: OrgKey, now: Millis) -> R<()> {
    let mut tx = conn.transaction().await?;
    open_gate(&mut tx, org).await?;
    for sql in [
        "DELETE FROM pruned_entries WHERE org_id = $1",
        "DELETE FROM merkle_subtrees WHERE org_id = $1",
        "DELETE FROM merkle_subtrees_to_fill WHERE org_id = $1",
        "DELETE FROM verified_points WHERE org_id = $1",
        "DELETE FROM checkpoints WHERE org_id = $1",
        "DELETE FROM chain_state WHERE org_id = $1",
    ] {
        tx.execute(sql, &[&org.get()]).await?;
    }
    tx.execute(
        "UPDATE orgs SET purged_ms = $2 WHERE key = $1",
        &[&org.get(), &now],
    )
    .await?;
    tx.commit().await
}
