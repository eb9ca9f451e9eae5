//! Settings and retention: which entries a policy expires, and their removal.
//!
//! A pruned entry leaves its `seq` and hash behind in `pruned_entries`, so the chain of the
//! entries that remain, the checkpoints and the Merkle proofs all still verify; its row and its
//! identifier rows (`entry_keys`) go. The delete trigger on `entries` (migration 3, `schema.rs`)
//! refuses every deletion except inside a transaction that set `stele.retention_org` and
//! `stele.retention_below_pk` as transaction-local settings, and then only of that
//! organization's entries older than that bound; only [`prune_entries`] sets them.
//!
//! How it reads, and why:
//! - An entry expires when it occurred before its channel's cutoff. Because `pk` is the
//!   occurrence time shifted left (`codec.rs`), that is `pk < pk_floor(cutoff)`: each channel's
//!   expired entries are one range of the `(org_id, channel, pk)` index. [`expired_entries`]
//!   walks that range for every channel the organization has used (its facets) and takes the
//!   oldest, so it reads expired entries only: however many entries a channel kept for longer
//!   lies among them, one call reads at most `limit` rows per channel from the index and `limit`
//!   entries, and an empty batch means there is nothing left to expire.
//! - [`prune_entries`] runs in one transaction, serialised across processes by an advisory lock
//!   so two retention runs never race for the same entries. It locks the entries it removes
//!   (`FOR UPDATE`), so a concurrent erasure either finishes first (and the identifier rows
//!   removed are the pseudonym's) or finds them gone (`erasure.rs`).
//! - Months that pruning empties have their partitions dropped afterwards (`partitions.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use stele_core::merkle::Hash;
use stele_core::time::Millis;
use stele_core::{Seq, chain};
use stele_store::{
    Cutoffs, ExpiredBatch, OrgKey, OrgSettings, RemovedPerChannel, RetiredEntry, StoreError,
};

use crate::codec::{
    ENTRY_COLUMN_COUNT, ENTRY_COLUMNS, FACET_CHANNEL, decode_row, entry_keys, hash_of, pk_floor,
};
use crate::error::{Error, R, other};
use crate::partitions::{Month, months_of};
use crate::pool::{Conn, Tx};

/// The transaction-scoped advisory lock a pruning transaction holds (`STELERET` in ASCII).
const RETENTION_LOCK: i64 = 0x5354_454c_4552_4554;

pub async fn settings(conn: &mut Conn, org: OrgKey) -> R<OrgSettings> {
    let stored = conn
        .query_opt(
            "SELECT settings FROM org_settings WHERE org_id = $1",
            &[&org.get()],
        )
        .await?;
    match stored {
        Some(row) => {
            let json: &str = row.try_get(0)?;
            serde_json::from_str(json).map_err(|e| other(format!("org_settings.settings: {e}")))
        }
        None => Ok(OrgSettings::default()),
    }
}

pub async fn put_settings(
    conn: &mut Conn,
    org: OrgKey,
    settings: &OrgSettings,
    now: Millis,
) -> R<()> {
    let json = serde_json::to_string(settings).map_err(|e| other(e.to_string()))?;
    let mut tx = conn.transaction().await?;
    let known = tx
        .query_opt("SELECT 1 FROM orgs WHERE key = $1", &[&org.get()])
        .await?
        .is_some();
    if !known {
        return Err(Error::Store(StoreError::NotFound));
    }
    tx.execute(
        "INSERT INTO org_settings (org_id, settings, updated_ms) VALUES ($1, $2, $3)
         ON CONFLICT (org_id) DO UPDATE SET settings = $2, updated_ms = $3",
        &[&org.get(), &json, &now],
    )
    .await?;
    tx.commit().await
}

/// True for exactly one caller per `(name, due)`: the row moves forward only to a later `due`.
pub async fn claim_scheduled_run(conn: &mut Conn, name: &str, due: Millis) -> R<bool> {
    if name.contains('\0') {
        return Err(Error::Store(StoreError::Conflict(
            "a scheduled job's name cannot contain U+0000".into(),
        )));
    }
    let mut tx = conn.transaction().await?;
    let written = tx
        .execute(
            "INSERT INTO scheduled_runs (name, due_ms) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET due_ms = EXCLUDED.due_ms
             WHERE scheduled_runs.due_ms < EXCLUDED.due_ms",
            &[&name, &due],
        )
        .await?;
    tx.commit().await?;
    Ok(written == 1)
}

/// The exclusive `pk` below which nothing the cutoffs keep can lie.
fn pk_bound(cutoffs: &Cutoffs) -> Option<i64> {
    cutoffs.latest().map(pk_floor)
}

/// The `pk`s of the organization's oldest expired entries after `resume_after`, at most `limit`:
/// for each channel, the first `limit` of its expired range, then the first `limit` of those.
const EXPIRED_PKS: &str = "SELECT x.pk FROM unnest($2::text[], $3::int8[]) AS c (channel, below)
     CROSS JOIN LATERAL (
         SELECT e.pk FROM entries e
         WHERE e.org_id = $1 AND e.channel = c.channel AND e.pk > $4 AND e.pk < c.below
         ORDER BY e.pk LIMIT $5
     ) x
     ORDER BY x.pk LIMIT $5";

/// The first `limit` entries that `cutoffs` expire, oldest occurrence first, after
/// `resume_after`, with the chain values an archive keeps.
pub async fn expired_entries(
    conn: &mut Conn,
    org: OrgKey,
    cutoffs: &Cutoffs,
    resume_after: i64,
    limit: usize,
) -> R<ExpiredBatch> {
    if pk_bound(cutoffs).is_none() || limit == 0 {
        return Ok(ExpiredBatch::default());
    }
    let mut tx = conn.snapshot().await?;
    let org_id: String = tx
        .query_opt("SELECT id FROM orgs WHERE key = $1", &[&org.get()])
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?
        .try_get(0)?;
    // Every channel the organization has used is among its facets (the writer records them in
    // the transaction that writes the entries); each has its own expired `pk` range.
    let (mut channels, mut below) = (Vec::new(), Vec::new());
    for row in tx
        .query(
            "SELECT value FROM facets WHERE org_id = $1 AND kind = $2",
            &[&org.get(), &FACET_CHANNEL],
        )
        .await?
    {
        let channel: String = row.try_get(0)?;
        if let Some(cutoff) = cutoffs.for_channel(&channel) {
            let bound = pk_floor(cutoff);
            if bound > resume_after.saturating_add(1) {
                channels.push(channel);
                below.push(bound);
            }
        }
    }
    let mut batch = ExpiredBatch {
        entries: Vec::new(),
        resume_after,
    };
    if channels.is_empty() {
        return Ok(batch);
    }
    let limit = limit.min(i64::MAX as usize) as i64;
    let pks: Vec<i64> = tx
        .query(
            EXPIRED_PKS,
            &[&org.get(), &channels, &below, &resume_after, &limit],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    if pks.is_empty() {
        return Ok(batch);
    }
    let rows = tx
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS}, e.salt, e.personal_digest, e.erased, e.hash
                 FROM entries e JOIN unnest($2::int8[]) AS w (pk) ON e.pk = w.pk
                 WHERE e.org_id = $1 ORDER BY e.pk"
            ),
            &[&org.get(), &pks],
        )
        .await?;
    let n = ENTRY_COLUMN_COUNT;
    for row in &rows {
        let (pk, entry) = decode_row(row)?;
        batch.resume_after = pk;
        // The index ranges say so already; the shared rule has the last word.
        if !cutoffs.expires(&entry.event.channel, entry.event.occurred_at) {
            continue;
        }
        let salt: Option<Vec<u8>> = row.try_get(n)?;
        let seal = stele_core::seal::Seal::from_bytes(salt.as_deref())
            .map_err(|e| StoreError::Other(format!("seq {}: {e}", entry.seq)))?;
        batch.entries.push(RetiredEntry {
            org_id: org_id.clone(),
            entry,
            // Filled in below, once the batch's own hashes are known.
            prev_hash: [0; 32],
            hash: hash_of(row.try_get(n + 3)?, "hash")?,
            personal_digest: hash_of(row.try_get(n + 1)?, "personal_digest")?,
            seal,
            erased: row.try_get(n + 2)?,
        });
    }
    let prev = previous_hashes(&mut tx, org, &org_id, &batch.entries).await?;
    for retired in &mut batch.entries {
        retired.prev_hash = prev[&retired.entry.seq.prev()];
    }
    tx.commit().await?;
    Ok(batch)
}

/// The chain hash before each entry of `batch` (at `seq - 1`): from the batch itself, else from
/// `pruned_entries` or `entries`, and the organization's genesis hash before `seq` 1.
async fn previous_hashes(
    tx: &mut Tx<'_>,
    org: OrgKey,
    org_id: &str,
    batch: &[RetiredEntry],
) -> R<HashMap<Seq, Hash>> {
    let mut known: HashMap<Seq, Hash> = batch.iter().map(|r| (r.entry.seq, r.hash)).collect();
    known.insert(Seq::BEFORE_FIRST, chain::genesis(org_id));
    let mut wanted: Vec<Seq> = batch
        .iter()
        .map(|r| r.entry.seq.prev())
        .filter(|seq| !known.contains_key(seq))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    // An entry pruned earlier is one primary-key probe; an entry still there one probe per
    // partition of the `(org_id, seq)` index, so that lookup is left for what is still missing.
    for sql in [
        "SELECT seq, hash FROM pruned_entries WHERE org_id = $1 AND seq = ANY($2)",
        "SELECT seq, hash FROM entries WHERE org_id = $1 AND seq = ANY($2)",
    ] {
        if wanted.is_empty() {
            break;
        }
        let seqs: Vec<i64> = wanted.iter().map(|seq| seq.get()).collect();
        for row in tx.query(sql, &[&org.get(), &seqs]).await? {
            known.insert(Seq::new(row.try_get(0)?), hash_of(row.try_get(1)?, "hash")?);
        }
        wanted.retain(|seq| !known.contains_key(seq));
    }
    if let Some(seq) = wanted.first() {
        return Err(other(format!(
            "entry {seq} is missing from the chain: run `stele verify`"
        )));
    }
    Ok(known)
}

/// What one pruning transaction removed.
pub struct Pruned {
    pub removed: RemovedPerChannel,
    /// The months the removed entries occurred in, whose partitions may now be empty.
    pub months: BTreeSet<Month>,
}

/// Removes the expired entries among `seqs`, keeping each one's place in the chain.
pub async fn prune_entries(
    conn: &mut Conn,
    org: OrgKey,
    cutoffs: &Cutoffs,
    seqs: &[Seq],
) -> R<Pruned> {
    let mut pruned = Pruned {
        removed: BTreeMap::new(),
        months: BTreeSet::new(),
    };
    let Some(below) = pk_bound(cutoffs) else {
        return Ok(pruned);
    };
    if seqs.is_empty() {
        return Ok(pruned);
    }
    let seqs: Vec<i64> = seqs.iter().map(|seq| seq.get()).collect();
    let mut tx = conn.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RETENTION_LOCK])
        .await?;
    // What the delete trigger checks each row against; both vanish when the transaction ends.
    tx.execute(
        "SELECT set_config('stele.retention_org', $1, true),
                set_config('stele.retention_below_pk', $2, true)",
        &[&org.to_string(), &below.to_string()],
    )
    .await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS}, e.hash FROM entries e
                 WHERE e.org_id = $1 AND e.seq = ANY($2) AND e.pk < $3
                 FOR UPDATE"
            ),
            &[&org.get(), &seqs, &below],
        )
        .await?;
    let (mut pks, mut pruned_seqs, mut hashes, mut occurred) = (vec![], vec![], vec![], vec![]);
    let (mut key_kinds, mut key_values, mut key_pks) = (vec![], vec![], vec![]);
    for row in &rows {
        let (pk, entry) = decode_row(row)?;
        let event = &entry.event;
        if !cutoffs.expires(&event.channel, event.occurred_at) {
            continue;
        }
        let hash: Vec<u8> = row.try_get(ENTRY_COLUMN_COUNT)?;
        pks.push(pk);
        pruned_seqs.push(entry.seq.get());
        hashes.push(hash);
        occurred.push(event.occurred_at);
        // The identifier rows are exactly the entry's current keys (erasure replaces them with
        // the pseudonym's when it replaces the personal fields).
        for (kind, value) in entry_keys(event) {
            key_kinds.push(kind);
            key_values.push(value.to_string());
            key_pks.push(pk);
        }
        *pruned.removed.entry(event.channel.clone()).or_default() += 1;
    }
    if pks.is_empty() {
        return Ok(pruned);
    }
    tx.execute(
        "INSERT INTO pruned_entries (org_id, seq, hash)
         SELECT $1, p.seq, p.hash FROM unnest($2::int8[], $3::bytea[]) AS p (seq, hash)",
        &[&org.get(), &pruned_seqs, &hashes],
    )
    .await?;
    tx.execute(
        "DELETE FROM entry_keys k
         USING unnest($2::int2[], $3::text[], $4::int8[]) AS d (kind, value, pk)
         WHERE k.org_id = $1 AND k.kind = d.kind AND k.value = d.value AND k.pk = d.pk",
        &[&org.get(), &key_kinds, &key_values, &key_pks],
    )
    .await?;
    let deleted = tx
        .execute(
            "DELETE FROM entries e USING unnest($2::int8[]) AS d (pk)
             WHERE e.pk = d.pk AND e.org_id = $1",
            &[&org.get(), &pks],
        )
        .await?;
    if deleted != pks.len() as u64 {
        return Err(other(format!(
            "pruning expected to delete {} entries but deleted {deleted}",
            pks.len()
        )));
    }
    tx.commit().await?;
    pruned.months = months_of(occurred);
    Ok(pruned)
}
