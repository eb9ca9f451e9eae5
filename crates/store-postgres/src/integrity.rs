//! Checkpoints and verification of the hash chain (the format is `stele_core::chain`), with the
//! same problem kinds and first-bad-`seq` rules as the SQLite backend, so `stele verify` reports
//! the same thing whichever backend holds the trail.
//!
//! Verification reads inside one `REPEATABLE READ` snapshot: the chain state, the checkpoints and
//! the entries it compares are one moment of the database, even while other processes append.
//! Entries that retention removed take part through the `seq` and hash they left in
//! `pruned_entries` (`retention.rs`), merged with the entries in `seq` order.

use std::ops::RangeInclusive;
use std::sync::Arc;

use stele_core::Seq;
use stele_core::chain::{ERASURE_DETAILED_ACTION, REDACTION_DETAILED_ACTION};
use stele_core::checkpoint::{Checkpoint, PublicKey, SignedCheckpoint, SigningKey};
use stele_core::merkle::{Frontier, Hash};
use stele_core::seal::Seal;
use stele_core::time::Millis;
use stele_store::chain_check::{self, ChainRow, Verification, Vouchers, Want};
use stele_store::{OrgKey, StoreError, VerifiedPoint, VerifyReport};
use tokio_postgres::Row;

use crate::codec::{ENTRY_COLUMN_COUNT, ENTRY_COLUMNS, decode_row, hash_of};
use crate::error::{Error, R, other};
use crate::pool::{Conn, Tx};

/// The transaction-scoped advisory lock taken while signing checkpoints (`STELECKP` in ASCII).
const CHECKPOINT_LOCK: i64 = 0x5354_454c_4543_4b50;

/// Signs a checkpoint for every organization whose chain moved past its last checkpoint, if that
/// one is at least `every_ms` old (or `force`). Returns how many were signed.
///
/// Several processes sharing the database run this every few seconds. They take turns on
/// [`CHECKPOINT_LOCK`], and each reads what is due only once it holds the lock, so it sees the
/// checkpoints the previous holder just committed: one checkpoint per interval, not one per
/// process. (Should a signature of the same position still race in, from a process that does not
/// take the lock, the second insert is ignored.)
///
/// An organization whose newest checkpoint another key signed is left alone, with an error in the
/// log: Stele verifies a chain with one key, so signing with a second one would make `verify`
/// fail. That happens only when servers with different keys share a database; the startup check
/// (`checkpoint_key_ids`, then `claim_signing_key` for a database with no checkpoint yet) catches
/// it before a server serves.
pub async fn make_checkpoints(
    conn: &mut Conn,
    key: &SigningKey,
    every_ms: Millis,
    force: bool,
    now: Millis,
) -> R<usize> {
    let mut tx = conn.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHECKPOINT_LOCK])
        .await?;
    let due = tx
        .query(
            "SELECT s.org_id, o.id, s.seq, s.head, s.frontier, last.key_id
             FROM chain_state s JOIN orgs o ON o.key = s.org_id
             LEFT JOIN LATERAL (
                 SELECT c.seq, c.created_ms, c.key_id FROM checkpoints c
                 WHERE c.org_id = s.org_id ORDER BY c.seq DESC LIMIT 1
             ) last ON true
             WHERE s.seq > coalesce(last.seq, 0)
               AND ($1 OR coalesce(last.created_ms, 0) <= $2)
             ORDER BY s.org_id",
            &[&force, &(now - every_ms)],
        )
        .await?;
    let ours = key.public_key().key_id();
    let mut signed_count = 0;
    for row in &due {
        let org = OrgKey::new(row.try_get(0)?);
        let last_key: Option<&str> = row.try_get(5)?;
        if let Some(theirs) = last_key.filter(|k| !k.eq_ignore_ascii_case(&ours)) {
            let org_id: &str = row.try_get(1)?;
            tracing::error!(
                org = org_id,
                database_key_id = theirs,
                our_key_id = %ours,
                "not signing a checkpoint: this organization's checkpoints are signed by another \
                 key; every server sharing a database must use the same signing key file \
                 (--signing-key-file)"
            );
            continue;
        }
        let frontier: &str = row.try_get(4)?;
        let frontier: Frontier = serde_json::from_str(frontier)
            .map_err(|e| other(format!("chain_state.frontier: {e}")))?;
        let seq = Seq::new(row.try_get(2)?);
        let signed = key.sign(&Checkpoint {
            org_id: row.try_get(1)?,
            seq,
            chain_head: hash_of(row.try_get(3)?, "chain_state.head")?,
            merkle_root: frontier.root(),
            created_at: now,
        });
        tx.execute(
            "INSERT INTO checkpoints
                 (org_id, seq, chain_head, merkle_root, created_ms, key_id, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (org_id, seq) DO NOTHING",
            &[
                &org.get(),
                &seq.get(),
                &signed.checkpoint.chain_head.to_vec(),
                &signed.checkpoint.merkle_root.to_vec(),
                &now,
                &signed.key_id,
                &signed.signature,
            ],
        )
        .await?;
        signed_count += 1;
    }
    tx.commit().await?;
    Ok(signed_count)
}

/// The key ids of each organization's newest checkpoint, distinct and sorted: one primary-key
/// probe per organization, since the checkpoints table itself may be large.
pub async fn checkpoint_key_ids(conn: &mut Conn) -> R<Vec<String>> {
    let rows = conn
        .query(
            "SELECT DISTINCT last.key_id FROM orgs o
             CROSS JOIN LATERAL (
                 SELECT c.key_id FROM checkpoints c
                 WHERE c.org_id = o.key ORDER BY c.seq DESC LIMIT 1
             ) last
             ORDER BY last.key_id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

async fn org_public_id(tx: &mut Tx<'_>, org: OrgKey) -> R<String> {
    let row = tx
        .query_opt("SELECT id FROM orgs WHERE key = $1", &[&org.get()])
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    Ok(row.try_get(0)?)
}

fn checkpoint_from_row(org_id: &str, row: &Row) -> R<SignedCheckpoint> {
    Ok(SignedCheckpoint {
        checkpoint: Checkpoint {
            org_id: org_id.to_string(),
            seq: Seq::new(row.try_get(0)?),
            chain_head: hash_of(row.try_get(1)?, "checkpoints.chain_head")?,
            merkle_root: hash_of(row.try_get(2)?, "checkpoints.merkle_root")?,
            created_at: row.try_get(3)?,
        },
        key_id: row.try_get(4)?,
        signature: row.try_get(5)?,
    })
}

const CHECKPOINT_COLUMNS: &str = "seq, chain_head, merkle_root, created_ms, key_id, signature";

/// Checkpoints of one organization, newest first, optionally only the newest `limit`.
pub async fn checkpoints(
    tx: &mut Tx<'_>,
    org: OrgKey,
    limit: Option<usize>,
) -> R<Vec<SignedCheckpoint>> {
    let org_id = org_public_id(tx, org).await?;
    let limit = limit.map_or(i64::MAX, |l| l.min(i64::MAX as usize) as i64);
    let rows = tx
        .query(
            &format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE org_id = $1
                 ORDER BY seq DESC LIMIT $2"
            ),
            &[&org.get(), &limit],
        )
        .await?;
    rows.iter()
        .map(|r| checkpoint_from_row(&org_id, r))
        .collect()
}

pub async fn checkpoint_at(tx: &mut Tx<'_>, org: OrgKey, seq: Seq) -> R<Option<SignedCheckpoint>> {
    let org_id = org_public_id(tx, org).await?;
    let row = tx
        .query_opt(
            &format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE org_id = $1 AND seq = $2"),
            &[&org.get(), &seq.get()],
        )
        .await?;
    row.map(|r| checkpoint_from_row(&org_id, &r)).transpose()
}

/// What the organization's erasure and redaction records vouch for (`chain_check::vouchers`).
async fn recorded_vouchers(tx: &mut Tx<'_>, org: OrgKey) -> R<Vouchers> {
    let rows = tx
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries e
                 WHERE e.org_id = $1 AND e.detailed_action IN ($2, $3) ORDER BY e.seq"
            ),
            &[
                &org.get(),
                &ERASURE_DETAILED_ACTION,
                &REDACTION_DETAILED_ACTION,
            ],
        )
        .await?;
    let records: Vec<_> = rows
        .iter()
        .filter_map(|row| decode_row(row).ok().map(|(_, entry)| entry))
        .collect();
    Ok(chain_check::vouchers(&records))
}

/// The fewest rows worth a half of their own on another thread.
const MIN_HALF: usize = 1000;

/// Up to `limit` stored entries from `from_seq` on, in `seq` order, as PostgreSQL sends them.
async fn entry_rows(tx: &mut Tx<'_>, org: OrgKey, from_seq: Seq, limit: usize) -> R<Vec<Row>> {
    tx.query(
        &format!(
            "SELECT {ENTRY_COLUMNS}, e.salt, e.personal_digest, e.erased, e.hash
                 FROM entries e WHERE e.org_id = $1 AND e.seq >= $2 ORDER BY e.seq LIMIT $3"
        ),
        &[&org.get(), &from_seq.get(), &(limit as i64)],
    )
    .await
}

/// Rows being checked ([`checked_rows`]) on blocking threads, in two halves side by side for a
/// large read, while the verification goes on reading: decoding the rows and hashing what they
/// hold is most of a verification's time, all of it in this process (PostgreSQL needs a fifth
/// of a core to send them). In the server's background verification the blocking threads are
/// its own runtime's, at its low priority.
struct Checking(Vec<tokio::task::JoinHandle<R<Vec<ChainRow>>>>);

impl Checking {
    fn start(org_id: &str, mut rows: Vec<Row>, vouchers: &Arc<Vouchers>) -> Checking {
        let second = (rows.len() >= 2 * MIN_HALF).then(|| rows.split_off(rows.len() / 2));
        let halves = [Some(rows), second].into_iter().flatten().map(|rows| {
            let (org_id, vouchers) = (org_id.to_string(), Arc::clone(vouchers));
            tokio::task::spawn_blocking(move || checked_rows(&org_id, &rows, &vouchers))
        });
        Checking(halves.collect())
    }

    /// The checked rows, in order.
    async fn finish(self) -> R<Vec<ChainRow>> {
        let mut out = Vec::new();
        for half in self.0 {
            let rows = half
                .await
                .map_err(|e| other(format!("a verification thread failed: {e}")))??;
            out.extend(rows);
        }
        Ok(out)
    }
}

/// Rows read ahead, before the verification asked for them, while the rows before them were
/// being checked.
struct ReadAhead {
    from: Seq,
    limit: usize,
    rows: Vec<Row>,
}

/// Rows read by [`entry_rows`], decoded, checked and prelinked.
fn checked_rows(org_id: &str, rows: &[Row], vouchers: &Vouchers) -> R<Vec<ChainRow>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (_, entry) = decode_row(row)?;
        let n = ENTRY_COLUMN_COUNT;
        let seal = Seal::from_bytes(row.try_get::<_, Option<&[u8]>>(n)?)
            .map_err(|e| other(format!("seq {}: {e}", entry.seq)))?;
        let personal_digest = hash_of(row.try_get(n + 1)?, "personal_digest")?;
        let erased: bool = row.try_get(n + 2)?;
        let hash = hash_of(row.try_get(n + 3)?, "hash")?;
        out.push(ChainRow::new(
            &entry,
            &seal,
            personal_digest,
            erased,
            hash,
            vouchers,
        ));
    }
    chain_check::prelink(org_id, &mut out);
    Ok(out)
}

/// The places pruned entries left in the chain, from `from_seq` on, at most `limit`.
pub async fn pruned_links(
    tx: &mut Tx<'_>,
    org: OrgKey,
    from_seq: Seq,
    limit: i64,
) -> R<Vec<(Seq, Hash)>> {
    let rows = tx
        .query(
            "SELECT seq, hash FROM pruned_entries WHERE org_id = $1 AND seq >= $2
             ORDER BY seq LIMIT $3",
            &[&org.get(), &from_seq.get(), &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                Seq::new(r.try_get(0)?),
                hash_of(r.try_get(1)?, "pruned_entries.hash")?,
            ))
        })
        .collect()
}

/// Verifies the organization's chain: reads the rows the shared [`Verification`] asks for until it
/// reports.
pub async fn verify(
    conn: &mut Conn,
    org: OrgKey,
    key: Option<&PublicKey>,
    since: Option<VerifiedPoint>,
) -> R<VerifyReport> {
    let mut tx = conn.snapshot().await?;
    let org_id = org_public_id(&mut tx, org).await?;
    let recorded_up_to: Option<Seq> = tx
        .query_opt(
            "SELECT seq FROM chain_state WHERE org_id = $1",
            &[&org.get()],
        )
        .await?
        .map(|r| r.try_get(0).map(Seq::new))
        .transpose()?;
    let checkpoints = checkpoints(&mut tx, org, None).await?;
    let vouchers = Arc::new(recorded_vouchers(&mut tx, org).await?);
    let mut verification = match since {
        Some(since) => {
            Verification::resume(&org_id, checkpoints, key.copied(), recorded_up_to, since)
        }
        None => Verification::new(&org_id, checkpoints, key.copied(), recorded_up_to),
    };
    let mut want = verification.start();
    let mut read_ahead: Option<ReadAhead> = None;
    loop {
        want = match want {
            Want::Rows { from, limit } => {
                let rows = match read_ahead.take() {
                    Some(ahead) if (ahead.from, ahead.limit) == (from, limit) => ahead.rows,
                    _ => entry_rows(&mut tx, org, from, limit).await?,
                };
                let full = rows.len() == limit;
                let next = rows
                    .last()
                    .map(|r| r.try_get(1).map(Seq::new))
                    .transpose()?;
                let checking = Checking::start(&org_id, rows, &vouchers);
                let pruned = pruned_links(&mut tx, org, from, limit as i64).await?;
                // With no pruned entries among them, the next read starts right after the last
                // of these rows: read it while these are checked.
                if let Some(last) = next.filter(|_| full && pruned.is_empty()) {
                    let from = last.next();
                    let rows = entry_rows(&mut tx, org, from, limit).await?;
                    read_ahead = Some(ReadAhead { from, limit, rows });
                }
                verification.rows(checking.finish().await?, pruned)
            }
            Want::Ahead { from, limit } => {
                let rows = entry_rows(&mut tx, org, from, limit).await?;
                verification.ahead(Checking::start(&org_id, rows, &vouchers).finish().await?)
            }
            Want::Subtrees(subtrees) => {
                verification.subtrees(crate::subtrees::stored_as_is(&mut tx, org, &subtrees).await?)
            }
            Want::Done(report) => return Ok(report),
        };
    }
}

/// The entry hashes of `seqs` in order (the Merkle tree's leaves there), pruned entries'
/// included; an error names the first one missing.
pub async fn entry_hashes(conn: &mut Conn, org: OrgKey, seqs: RangeInclusive<Seq>) -> R<Vec<Hash>> {
    let (first, last) = (*seqs.start(), *seqs.end());
    let rows = conn
        .query(
            // A pruned entry's leaf is still in the tree: its hash stays in `pruned_entries`.
            "SELECT seq, hash FROM entries WHERE org_id = $1 AND seq BETWEEN $2 AND $3
             UNION ALL SELECT seq, hash FROM pruned_entries
             WHERE org_id = $1 AND seq BETWEEN $2 AND $3
             ORDER BY seq",
            &[&org.get(), &first.get(), &last.get()],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut expected = first;
    for row in rows {
        if Seq::new(row.try_get(0)?) != expected {
            break;
        }
        out.push(hash_of(row.try_get(1)?, "chain hash")?);
        expected = expected.next();
    }
    if expected <= last {
        return Err(other(format!(
            "the chain has no entry hash at seq {expected}: run `stele verify`"
        )));
    }
    Ok(out)
}

/// [`entry_hashes`] of several spans in one query (a proof's few blocks of leaves).
pub async fn entry_hashes_of(
    conn: &mut Conn,
    org: OrgKey,
    spans: &[RangeInclusive<Seq>],
) -> R<Vec<Vec<Hash>>> {
    let firsts: Vec<i64> = spans.iter().map(|s| s.start().get()).collect();
    let lasts: Vec<i64> = spans.iter().map(|s| s.end().get()).collect();
    let rows = conn
        .query(
            "SELECT e.seq, e.hash
             FROM unnest($2::int8[], $3::int8[]) AS r (first, last),
             LATERAL (SELECT seq, hash FROM entries
                      WHERE org_id = $1 AND seq BETWEEN r.first AND r.last
                      UNION ALL SELECT seq, hash FROM pruned_entries
                      WHERE org_id = $1 AND seq BETWEEN r.first AND r.last) AS e
             ORDER BY e.seq",
            &[&org.get(), &firsts, &lasts],
        )
        .await?;
    let mut found = std::collections::BTreeMap::new();
    for row in rows {
        found.insert(row.try_get::<_, i64>(0)?, row.try_get::<_, Vec<u8>>(1)?);
    }
    spans
        .iter()
        .map(|seqs| {
            (seqs.start().get()..=seqs.end().get())
                .map(|seq| match found.remove(&seq) {
                    Some(hash) => Ok(hash_of(hash, "chain hash")?),
                    None => Err(other(format!(
                        "the chain has no entry hash at seq {seq}: run `stele verify`"
                    ))),
                })
                .collect()
        })
        .collect()
}

pub async fn personal_digest(conn: &mut Conn, org: OrgKey, seq: Seq) -> R<Option<(Hash, Seal)>> {
    let row = conn
        .query_opt(
            "SELECT personal_digest, salt FROM entries WHERE org_id = $1 AND seq = $2",
            &[&org.get(), &seq.get()],
        )
        .await?;
    row.map(|row| {
        let salt: Option<Vec<u8>> = row.try_get(1)?;
        Ok((
            hash_of(row.try_get(0)?, "personal_digest")?,
            Seal::from_bytes(salt.as_deref()).map_err(|e| other(format!("seq {seq}: {e}")))?,
        ))
    })
    .transpose()
}

/// Where the organization's chain was last verified to (`verified_points`).
pub async fn last_verified(conn: &mut Conn, org: OrgKey) -> R<Option<VerifiedPoint>> {
    let row = conn
        .query_opt(
            "SELECT checkpoint_seq, frontier FROM verified_points WHERE org_id = $1",
            &[&org.get()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let frontier: String = row.try_get(1)?;
    // A row that does not parse is as good as none: the next verification is a full one.
    Ok(serde_json::from_str(&frontier)
        .ok()
        .map(|frontier| VerifiedPoint {
            checkpoint_seq: Seq::new(row.get(0)),
            frontier,
        }))
}

/// Records where a verification that passed got to (never moving it back: two verifications
/// finishing out of order keep the later point).
pub async fn record_verified(
    conn: &mut Conn,
    org: OrgKey,
    point: &VerifiedPoint,
    now: Millis,
) -> R<()> {
    let frontier = serde_json::to_string(&point.frontier).map_err(|e| other(e.to_string()))?;
    let mut tx = conn.transaction().await?;
    tx.execute(
        "INSERT INTO verified_points (org_id, checkpoint_seq, frontier, verified_ms)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (org_id) DO UPDATE
         SET checkpoint_seq = $2, frontier = $3, verified_ms = $4
         WHERE verified_points.checkpoint_seq <= $2",
        &[&org.get(), &point.checkpoint_seq.get(), &frontier, &now],
    )
    .await?;
    tx.commit().await
}
