//! Settings and retention: which entries a policy expires, and their removal.
//!
//! A pruned entry leaves its `seq` and hash behind in `pruned_entries`, so the chain of the
//! entries that remain, the checkpoints and the Merkle proofs all still verify; its content, its
//! filter terms and its description index row go. Deletion is refused by a trigger unless the
//! deleting transaction has opened the `retention_gate` for that organization and cutoff, which
//! only [`prune_entries`] does (and closes again before it commits).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use stele_core::merkle::Hash;
use stele_core::time::Millis;
use stele_core::{Seq, chain};
use stele_store::{
    Cutoffs, ExpiredBatch, OrgKey, OrgSettings, RemovedPerChannel, Result, RetiredEntry, StoreError,
};

use crate::codec::{
    CHAIN_COLUMNS, ENTRY_COLUMN_COUNT, ENTRY_COLUMNS, decode_row, hash_of, pk_floor,
};
use crate::dict::Dict;
use crate::error::map_err;
use crate::search::{self, Change};

pub fn settings(conn: &Connection, org: OrgKey) -> Result<OrgSettings> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT settings FROM org_settings WHERE org_id = ?")
        .and_then(|mut s| s.query_row([org.get()], |r| r.get(0)).optional())
        .map_err(map_err)?;
    match stored {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Other(format!("org_settings.settings: {e}"))),
        None => Ok(OrgSettings::default()),
    }
}

pub fn put_settings(
    tx: &Transaction<'_>,
    org: OrgKey,
    settings: &OrgSettings,
    now: Millis,
) -> Result<()> {
    let json = serde_json::to_string(settings).map_err(|e| StoreError::Other(e.to_string()))?;
    tx.execute(
        "INSERT INTO org_settings (org_id, settings, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (org_id) DO UPDATE SET settings = ?2, updated_ms = ?3",
        params![org.get(), json, now],
    )
    .map_err(map_err)?;
    Ok(())
}

pub fn claim_scheduled_run(tx: &Transaction<'_>, name: &str, due: Millis) -> Result<bool> {
    let changed = tx
        .execute(
            "INSERT INTO scheduled_runs (name, due_ms) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET due_ms = ?2 WHERE scheduled_runs.due_ms < ?2",
            params![name, due],
        )
        .map_err(map_err)?;
    Ok(changed == 1)
}

/// The exclusive `pk` below which nothing the cutoffs keep can lie.
fn pk_bound(cutoffs: &Cutoffs) -> Option<i64> {
    cutoffs.latest().map(pk_floor)
}

/// Scans the organization's entries in occurrence order (`pk`) from `resume_after` up to the
/// latest cutoff, returning the first `limit` that their channel's cutoff expires.
pub fn expired_entries(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    cutoffs: &Cutoffs,
    resume_after: i64,
    limit: usize,
) -> Result<ExpiredBatch> {
    let Some(below) = pk_bound(cutoffs) else {
        return Ok(ExpiredBatch::default());
    };
    let org_id: String = conn
        .query_row("SELECT id FROM orgs WHERE key = ?", [org.get()], |r| {
            r.get(0)
        })
        .map_err(map_err)?;
    // Dictionary values another writer added since this connection last looked.
    dict.refresh(conn).map_err(map_err)?;
    let mut stmt = conn.prepare_cached(&expired_sql()).map_err(map_err)?;
    let mut rows = stmt
        .query(params![resume_after, below, org.get()])
        .map_err(map_err)?;
    let mut batch = ExpiredBatch {
        entries: Vec::new(),
        resume_after,
    };
    while let Some(row) = rows.next().map_err(map_err)? {
        let (pk, entry) = decode_row(row, dict)
            .map_err(map_err)?
            .map_err(|_| StoreError::Other("entry refers to an unknown dictionary id".into()))?;
        batch.resume_after = pk;
        if !cutoffs.expires(&entry.event.channel, entry.event.occurred_at) {
            continue;
        }
        let n = ENTRY_COLUMN_COUNT;
        let salt: Option<Vec<u8>> = row.get(n).map_err(map_err)?;
        let seal = stele_core::seal::Seal::from_bytes(salt.as_deref())
            .map_err(|e| StoreError::Other(format!("seq {}: {e}", entry.seq)))?;
        let personal_digest = hash_of(row.get(n + 1).map_err(map_err)?, "personal_digest")?;
        let erased: bool = row.get(n + 2).map_err(map_err)?;
        let hash = hash_of(row.get(n + 3).map_err(map_err)?, "hash")?;
        let prev_hash = hash_at(conn, org, &org_id, entry.seq.prev())?;
        batch.entries.push(RetiredEntry {
            org_id: org_id.clone(),
            entry,
            prev_hash,
            hash,
            personal_digest,
            seal,
            erased,
        });
        if batch.entries.len() >= limit {
            break;
        }
    }
    Ok(batch)
}

/// The scan of [`expired_entries`]: the organization's entries from `?1` to `?2` (exclusive) in
/// `pk` order. `+e.org_id` keeps the planner off the `(org_id, seq)` index: through it, SQLite
/// gathers every remaining entry of the organization into a temporary b-tree to sort by `pk`
/// before returning the first (hundreds of MB in memory and most of a prune's time, again for
/// every batch). Walking the primary key from `resume_after` streams them in order instead.
fn expired_sql() -> String {
    format!(
        "SELECT {ENTRY_COLUMNS}, {CHAIN_COLUMNS} FROM entries e
         WHERE e.pk > ?1 AND e.pk < ?2 AND +e.org_id = ?3 ORDER BY e.pk"
    )
}

/// The chain hash at `seq`, whether the entry is still there or was pruned (the genesis hash
/// before the first entry).
fn hash_at(conn: &Connection, org: OrgKey, org_id: &str, seq: Seq) -> Result<Hash> {
    if seq == Seq::BEFORE_FIRST {
        return Ok(chain::genesis(org_id));
    }
    let found: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT hash FROM entries WHERE org_id = ?1 AND seq = ?2
             UNION ALL SELECT hash FROM pruned_entries WHERE org_id = ?1 AND seq = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![org.get(), seq.get()], |r| r.get(0))
                .optional()
        })
        .map_err(map_err)?;
    let found = found.ok_or_else(|| {
        StoreError::Other(format!(
            "entry {seq} is missing from the chain: run `stele verify`"
        ))
    })?;
    hash_of(found, "hash")
}

/// How long one prune transaction may hold SQLite's single write lock. Ingest waits behind it,
/// so the batch a retention run hands over is removed in slices this short, each its own
/// transaction, with appends committed in between (one 5,000-entry transaction held the lock
/// for over a second and stalled every request behind it).
pub const PRUNE_SLICE: std::time::Duration = std::time::Duration::from_millis(25);

/// The pause after each slice. In the server's own process the writer already commits queued
/// appends between two slices; the pause is for a server in another process (`stele prune`
/// next to `stele serve`), whose writer waits for the lock retrying every millisecond
/// (`schema::wait_when_busy`) and gets it in this gap.
pub const PRUNE_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// What one prune transaction did: how many of the given `seqs` it went through (all of them,
/// unless the time budget ran out first) and what it removed.
#[derive(Debug, Default)]
pub struct PruneSlice {
    pub consumed: usize,
    pub removed: RemovedPerChannel,
}

/// Removes the expired entries among `seqs`, keeping each one's place in the chain, until
/// `budget` has passed (always at least one entry, so every slice makes progress).
pub fn prune_entries(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    cutoffs: &Cutoffs,
    seqs: &[Seq],
    budget: std::time::Duration,
) -> Result<PruneSlice> {
    let started = std::time::Instant::now();
    let mut removed: RemovedPerChannel = BTreeMap::new();
    let Some(below) = pk_bound(cutoffs) else {
        return Ok(PruneSlice {
            consumed: seqs.len(),
            removed,
        });
    };
    dict.refresh(tx).map_err(map_err)?;
    tx.execute(
        "INSERT INTO retention_gate (org_id, below_pk) VALUES (?, ?)",
        params![org.get(), below],
    )
    .map_err(map_err)?;
    let sql =
        format!("SELECT {ENTRY_COLUMNS}, e.hash FROM entries e WHERE e.org_id = ?1 AND e.seq = ?2");
    let mut consumed = 0;
    for &seq in seqs {
        if consumed > 0 && started.elapsed() >= budget {
            break;
        }
        consumed += 1;
        let found = tx
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_row(params![org.get(), seq.get()], |row| {
                    let decoded = decode_row(row, dict)?;
                    let hash: Vec<u8> = row.get(ENTRY_COLUMN_COUNT)?;
                    Ok(decoded.map(|(pk, entry)| (pk, entry, hash)))
                })
                .optional()
            })
            .map_err(map_err)?;
        let Some(found) = found else { continue };
        let (pk, entry, hash) = found
            .map_err(|_| StoreError::Other("entry refers to an unknown dictionary id".into()))?;
        let event = &entry.event;
        if !cutoffs.expires(&event.channel, event.occurred_at) {
            continue;
        }
        forget_in_search(tx, org, pk, seq)?;
        tx.prepare_cached("INSERT INTO pruned_entries (org_id, seq, hash) VALUES (?, ?, ?)")
            .and_then(|mut s| s.execute(params![org.get(), seq.get(), hash]))
            .map_err(map_err)?;
        tx.prepare_cached("DELETE FROM entries WHERE pk = ?")
            .and_then(|mut s| s.execute([pk]))
            .map_err(map_err)?;
        *removed.entry(event.channel.clone()).or_default() += 1;
    }
    tx.execute("DELETE FROM retention_gate", [])
        .map_err(map_err)?;
    Ok(PruneSlice { consumed, removed })
}

/// Queues the removal of an entry's rows from the search index (`search.rs`), in the
/// transaction that removes the entry.
pub(crate) fn forget_in_search(tx: &Transaction<'_>, org: OrgKey, pk: i64, seq: Seq) -> Result<()> {
    search::enqueue(tx, org, seq.get(), pk, Change::Removed).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expired_scan_walks_the_primary_key_without_sorting() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", expired_sql()))
            .unwrap()
            .query_map(params![0, 1, 1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().all(|step| !step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
        assert!(
            plan.iter().any(|step| step.contains("INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
    }
}
