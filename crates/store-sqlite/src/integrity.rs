//! Checkpoints and verification of the hash chain (the format is `stele_core::chain`).

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use stele_core::Seq;
use stele_core::chain::{ERASURE_DETAILED_ACTION, REDACTION_DETAILED_ACTION};
use stele_core::checkpoint::{Checkpoint, PublicKey, SignedCheckpoint, SigningKey};
use stele_core::merkle::{Frontier, Hash};
use stele_core::seal::Seal;
use stele_core::time::Millis;
use stele_store::chain_check::{self, ChainRow, Verification, Vouchers, Want};
use stele_store::{OrgKey, Result, StoreError, VerifiedPoint, VerifyReport};

use crate::codec::{
    CHAIN_COLUMNS, ENTRY_COLUMN_COUNT, ENTRY_COLUMNS, decode_row, hash_of, seal_of,
};
use crate::dict::Dict;
use crate::error::map_err;
use crate::read::Unindexed;
use crate::terms::{self, Field};

/// Signs a checkpoint for every organization whose chain moved past its last checkpoint, if that
/// one is at least `every_ms` old (or `force`). Returns how many were made.
pub fn make_checkpoints(
    tx: &Transaction<'_>,
    key: &SigningKey,
    every_ms: Millis,
    force: bool,
    now: Millis,
) -> Result<usize> {
    let due: Vec<(OrgKey, String, Seq, Vec<u8>, String)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT s.org_id, o.id, s.seq, s.head, s.frontier
                 FROM chain_state s JOIN orgs o ON o.key = s.org_id
                 LEFT JOIN (SELECT org_id, max(seq) AS seq, max(created_ms) AS created_ms
                            FROM checkpoints GROUP BY org_id) c ON c.org_id = s.org_id
                 WHERE s.seq > coalesce(c.seq, 0) AND (?1 OR coalesce(c.created_ms, 0) <= ?2)",
            )
            .map_err(map_err)?;
        stmt.query_map(params![force, now - every_ms], |r| {
            Ok((
                OrgKey::new(r.get(0)?),
                r.get(1)?,
                Seq::new(r.get(2)?),
                r.get(3)?,
                r.get(4)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(map_err)?
    };
    for (org, org_id, seq, head, frontier) in &due {
        let frontier: Frontier = serde_json::from_str(frontier)
            .map_err(|e| StoreError::Other(format!("chain_state.frontier: {e}")))?;
        let signed = key.sign(&Checkpoint {
            org_id: org_id.clone(),
            seq: *seq,
            chain_head: hash_of(head.clone(), "chain_state.head")?,
            merkle_root: frontier.root(),
            created_at: now,
        });
        tx.prepare_cached(
            "INSERT OR IGNORE INTO checkpoints
                 (org_id, seq, chain_head, merkle_root, created_ms, key_id, signature)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .and_then(|mut s| {
            s.execute(params![
                org.get(),
                seq.get(),
                &signed.checkpoint.chain_head[..],
                &signed.checkpoint.merkle_root[..],
                now,
                signed.key_id,
                signed.signature,
            ])
        })
        .map_err(map_err)?;
    }
    Ok(due.len())
}

/// The key ids of each organization's newest checkpoint, distinct and sorted. One primary-key
/// probe per organization: the checkpoints table itself may be large.
pub fn checkpoint_key_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT key_id FROM (
                 SELECT (SELECT c.key_id FROM checkpoints c WHERE c.org_id = o.key
                         ORDER BY c.seq DESC LIMIT 1) AS key_id
                 FROM orgs o
             ) WHERE key_id IS NOT NULL ORDER BY key_id",
        )
        .map_err(map_err)?;
    stmt.query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(map_err)
}

/// Checkpoints of one organization in `seq` order (ascending), optionally only the newest `limit`.
pub fn checkpoints(
    conn: &Connection,
    org: OrgKey,
    limit: Option<usize>,
) -> Result<Vec<SignedCheckpoint>> {
    let org_id: String = conn
        .query_row("SELECT id FROM orgs WHERE key = ?", [org.get()], |r| {
            r.get(0)
        })
        .map_err(map_err)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, chain_head, merkle_root, created_ms, key_id, signature FROM checkpoints
             WHERE org_id = ? ORDER BY seq DESC LIMIT ?",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map(params![org.get(), limit.map_or(-1, |l| l as i64)], |r| {
            Ok((
                Seq::new(r.get(0)?),
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(map_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, head, root, created_ms, key_id, signature) in rows.into_iter().rev() {
        out.push(SignedCheckpoint {
            checkpoint: Checkpoint {
                org_id: org_id.clone(),
                seq,
                chain_head: hash_of(head, "checkpoints.chain_head")?,
                merkle_root: hash_of(root, "checkpoints.merkle_root")?,
                created_at: created_ms,
            },
            key_id,
            signature,
        });
    }
    Ok(out)
}

/// What the organization's erasure and redaction records vouch for
/// (`chain_check::vouchers`), found through their detailed actions' terms.
fn recorded_vouchers(conn: &Connection, dict: &Dict, org: OrgKey) -> Result<Vouchers> {
    let unindexed = Unindexed::load(conn, dict, org)?;
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entry_terms t CROSS JOIN entries e ON e.pk = t.rowid
         WHERE t.entry_terms MATCH ?1 AND e.org_id = ?2
           AND t.rowid NOT IN (SELECT value FROM json_each(?3))"
    );
    dict.refresh(conn).map_err(map_err)?;
    let mut stmt = conn.prepare(&sql).map_err(map_err)?;
    let mut records = Vec::new();
    let vouching = [ERASURE_DETAILED_ACTION, REDACTION_DETAILED_ACTION];
    for detailed_action in vouching {
        let mut rows = stmt
            .query(params![
                terms::term(org, Field::DetailedAction, detailed_action),
                org.get(),
                unindexed.excluded()
            ])
            .map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            if let Ok((_, entry)) = decode_row(row, dict).map_err(map_err)? {
                records.push(entry);
            }
        }
    }
    // Records the search index has not taken in yet.
    let tail = unindexed.matching_entries(|entry| {
        entry
            .event
            .detailed_action
            .as_deref()
            .is_some_and(|d| vouching.contains(&d))
    })?;
    for row in tail.iter() {
        records.push(row.entry().map_err(|e| StoreError::Other(e.to_string()))?);
    }
    Ok(chain_check::vouchers(&records))
}

/// What every read of one organization's chain needs beside the connection.
#[derive(Clone, Copy)]
struct Chain<'a> {
    dict: &'a Dict,
    org: OrgKey,
    org_id: &'a str,
    vouchers: &'a Vouchers,
}

/// Up to `limit` stored entries from `from_seq` on, in `seq` order, checked against their seals
/// and prelinked (`chain_check::prelink`), so that the hashing is done by the thread that reads.
fn chain_rows(
    conn: &Connection,
    chain: Chain<'_>,
    from_seq: Seq,
    limit: usize,
) -> Result<Vec<ChainRow>> {
    let Chain {
        dict,
        org,
        org_id,
        vouchers,
    } = chain;
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}, {CHAIN_COLUMNS} FROM entries e
         WHERE e.org_id = ?1 AND e.seq >= ?2 ORDER BY e.seq LIMIT ?3"
    );
    let mut out = Vec::new();
    // Two passes at most: the second after loading dictionary values another writer added.
    for _ in 0..2 {
        out.clear();
        let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
        let mut rows = stmt
            .query(params![org.get(), from_seq.get(), limit as i64])
            .map_err(map_err)?;
        let mut missing_dict = false;
        while let Some(row) = rows.next().map_err(map_err)? {
            let Ok((_, entry)) = decode_row(row, dict).map_err(map_err)? else {
                missing_dict = true;
                break;
            };
            let n = ENTRY_COLUMN_COUNT;
            let seal = seal_of(row, n, entry.seq)?;
            let personal_digest = hash_of(row.get(n + 1).map_err(map_err)?, "personal_digest")?;
            let erased: bool = row.get(n + 2).map_err(map_err)?;
            let hash = hash_of(row.get(n + 3).map_err(map_err)?, "hash")?;
            out.push(ChainRow::new(
                &entry,
                &seal,
                personal_digest,
                erased,
                hash,
                vouchers,
            ));
        }
        if !missing_dict {
            chain_check::prelink(org_id, &mut out);
            return Ok(out);
        }
        dict.refresh(conn).map_err(map_err)?;
    }
    Err(StoreError::Other(
        "entry refers to an unknown dictionary id".into(),
    ))
}

/// Verifies the organization's chain: reads the rows the shared [`Verification`] asks for until it
/// reports.
///
/// Inside a read transaction every read sees one moment of the database. Called outside one,
/// the start (chain state, checkpoints, erasure records) is read in one short transaction and
/// each later read in another ([`Pieces`]), so that a long verification (the server's
/// background one, at a low priority under full ingest) never holds a snapshot that the WAL
/// cannot be folded back past; `SqliteStore::verify_since` then confirms a failure on one
/// snapshot.
///
/// With a `helper` connection, each piece of rows is read and checked in two halves side by
/// side, the second half on the helper in a thread of its own (the reading, decoding and
/// hashing of entries is nearly all of a verification's time, and the halves need nothing of
/// each other); the chain's links are still followed in order on this thread. A helper lost
/// with a thread that panicked is left `None`.
pub fn verify(
    conn: &Connection,
    mut helper: Option<&mut Option<Connection>>,
    dict: &Dict,
    org: OrgKey,
    key: Option<&PublicKey>,
    since: Option<VerifiedPoint>,
) -> Result<VerifyReport> {
    let mut pieces = Pieces::default();
    let (org_id, recorded_up_to, vouchers, checkpoints) = pieces.read(conn, |conn| {
        let org_id: String = conn
            .query_row("SELECT id FROM orgs WHERE key = ?", [org.get()], |r| {
                r.get(0)
            })
            .map_err(map_err)?;
        let recorded_up_to: Option<Seq> = conn
            .query_row(
                "SELECT seq FROM chain_state WHERE org_id = ?",
                [org.get()],
                |r| r.get(0).map(Seq::new),
            )
            .optional()
            .map_err(map_err)?;
        let vouchers = recorded_vouchers(conn, dict, org)?;
        let checkpoints = checkpoints(conn, org, None)?;
        Ok((org_id, recorded_up_to, vouchers, checkpoints))
    })?;
    let mut verification = match since {
        Some(since) => {
            Verification::resume(&org_id, checkpoints, key.copied(), recorded_up_to, since)
        }
        None => Verification::new(&org_id, checkpoints, key.copied(), recorded_up_to),
    };
    let chain = Chain {
        dict,
        org,
        org_id: &org_id,
        vouchers: &vouchers,
    };
    let mut want = verification.start();
    loop {
        want = match want {
            Want::Rows { from, limit } => {
                let spare = helper.as_deref_mut().filter(|h| h.is_some());
                let (entries, pruned) = match spare {
                    Some(spare) if limit >= 2 * MIN_HALF => {
                        rows_in_halves(conn, spare, &mut pieces, chain, from, limit)?
                    }
                    _ => pieces.read(conn, |conn| piece(conn, chain, from, limit))?,
                };
                verification.rows(entries, pruned)
            }
            Want::Ahead { from, limit } => {
                verification.ahead(pieces.read(conn, |conn| chain_rows(conn, chain, from, limit))?)
            }
            Want::Subtrees(subtrees) => verification.subtrees(pieces.read(conn, |conn| {
                crate::subtrees::stored_as_is(conn, org, &subtrees)
            })?),
            Want::Done(report) => return Ok(report),
        };
    }
}

/// A piece of the chain as `Want::Rows` asks for it: up to `limit` entries from a `seq` on, and
/// up to as many places pruned entries left.
type Piece = (Vec<ChainRow>, Vec<(Seq, Hash)>);

/// A piece read as one.
fn piece(conn: &Connection, chain: Chain<'_>, from: Seq, limit: usize) -> Result<Piece> {
    Ok((
        chain_rows(conn, chain, from, limit)?,
        pruned_links(conn, chain.org, from, limit)?,
    ))
}

/// The fewest rows worth a half of their own on another thread.
const MIN_HALF: usize = 1000;

/// `Want::Rows` read as two halves side by side: the first `limit / 2` entries from `from` here
/// (with the pruned links), the rest from the `seq` after them on `helper`, in a thread of its
/// own, each in a read transaction. Together they are the piece read as one if the first half
/// is `limit / 2` consecutive entries, or if the chain ends before the second half; otherwise
/// (pruned or missing entries among the first half) the second may not start where it should,
/// so the whole piece is read again here as one.
fn rows_in_halves(
    conn: &Connection,
    helper: &mut Option<Connection>,
    pieces: &mut Pieces,
    chain: Chain<'_>,
    from: Seq,
    limit: usize,
) -> Result<Piece> {
    let half = limit / 2;
    let middle = Seq::new(from.get() + half as i64);
    let spare = helper.take().expect("a helper connection");
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(move || {
            let rows = crate::in_read_transaction(&spare, |spare| {
                chain_rows(spare, chain, middle, limit - half)
            });
            (spare, rows)
        });
        let first = pieces.read(conn, |conn| {
            Ok((
                chain_rows(conn, chain, from, half)?,
                pruned_links(conn, chain.org, from, limit)?,
            ))
        });
        (first, second.join())
    });
    let (second, helper_back) = match second {
        Ok((spare, rows)) => (rows, Some(spare)),
        Err(_) => (
            Err(StoreError::Other("a verification thread failed".into())),
            None,
        ),
    };
    *helper = helper_back;
    let (mut entries, pruned) = first?;
    let second = second?;
    let consecutive =
        entries.len() == half && entries.last().map(|r| r.seq) == Some(Seq::new(middle.get() - 1));
    if !consecutive && !second.is_empty() {
        return pieces.read(conn, |conn| piece(conn, chain, from, limit));
    }
    entries.extend(second);
    Ok((entries, pruned))
}

/// A verification's reads, each in a read transaction of its own (unless the connection is in
/// one already), with room left between them for the writer to fold the WAL back.
///
/// Under sustained ingest the writer restarts the WAL (`writer::keep_wal_bounded`, after a
/// group) only at a moment when no reader holds an older snapshot, and a verification reading
/// piece after piece leaves few such moments: measured at 10M entries, the WAL grew to 3 GB
/// during a background pass read in pieces without waiting (docs/benchmarks.md). So while the
/// WAL is past twice the writer's bound and still growing (ingest is going on), a piece first
/// waits, up to a second, for it to shrink. A WAL that is large but not growing has no writer to
/// fold it back, and is not waited for (nor is one seen only once, before the first piece).
#[derive(Default)]
struct Pieces {
    /// The WAL's size when the last piece was read.
    wal_bytes: Option<u64>,
}

impl Pieces {
    /// How large the WAL may be before a piece waits for the writer to fold it back.
    const WAIT_PAST_BYTES: u64 = 2 * crate::writer::WAL_TRUNCATE_BYTES;
    /// The longest one wait lasts.
    const PATIENCE: Duration = Duration::from_secs(1);

    fn read<T>(
        &mut self,
        conn: &Connection,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        if !conn.is_autocommit() {
            return f(conn);
        }
        if let Some(wal) = conn.path().map(|db| format!("{db}-wal")) {
            let wal_bytes = || std::fs::metadata(&wal).map_or(0, |m| m.len());
            let mut now = wal_bytes();
            let growing = self.wal_bytes.is_some_and(|before| now > before);
            if now > Self::WAIT_PAST_BYTES && growing {
                let deadline = Instant::now() + Self::PATIENCE;
                while now > Self::WAIT_PAST_BYTES && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                    now = wal_bytes();
                }
            }
            self.wal_bytes = Some(now);
        }
        crate::in_read_transaction(conn, f)
    }
}

/// The places pruned entries left in the chain, from `from_seq` on, at most `limit`.
pub fn pruned_links(
    conn: &Connection,
    org: OrgKey,
    from_seq: Seq,
    limit: usize,
) -> Result<Vec<(Seq, Hash)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, hash FROM pruned_entries WHERE org_id = ? AND seq >= ?
             ORDER BY seq LIMIT ?",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map(params![org.get(), from_seq.get(), limit as i64], |r| {
            Ok((Seq::new(r.get(0)?), r.get::<_, Vec<u8>>(1)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(map_err)?;
    rows.into_iter()
        .map(|(seq, hash)| Ok((seq, hash_of(hash, "pruned_entries.hash")?)))
        .collect()
}

pub fn checkpoint_at(conn: &Connection, org: OrgKey, seq: Seq) -> Result<Option<SignedCheckpoint>> {
    // Checkpoints are few per organization; reading them in order keeps one code path.
    Ok(checkpoints(conn, org, None)?
        .into_iter()
        .find(|c| c.checkpoint.seq == seq))
}

/// The entry hashes of `seqs` in order (the Merkle tree's leaves there), pruned entries'
/// included; an error names the first one missing.
pub fn entry_hashes(
    conn: &Connection,
    org: OrgKey,
    seqs: RangeInclusive<Seq>,
) -> Result<Vec<Hash>> {
    let mut out = Vec::with_capacity((seqs.end().get() - seqs.start().get() + 1).max(0) as usize);
    each_entry_hash(conn, org, seqs, |h| out.push(h))?;
    Ok(out)
}

/// [`entry_hashes`] one at a time, for a whole chain without holding it in memory.
pub fn each_entry_hash(
    conn: &Connection,
    org: OrgKey,
    seqs: RangeInclusive<Seq>,
    mut each: impl FnMut(Hash),
) -> Result<()> {
    let (first, last) = (*seqs.start(), *seqs.end());
    let mut stmt = conn
        .prepare_cached(
            // A pruned entry's leaf is still in the tree: its hash stays in `pruned_entries`.
            "SELECT seq, hash FROM entries WHERE org_id = ?1 AND seq BETWEEN ?2 AND ?3
             UNION ALL SELECT seq, hash FROM pruned_entries
             WHERE org_id = ?1 AND seq BETWEEN ?2 AND ?3
             ORDER BY seq",
        )
        .map_err(map_err)?;
    let mut rows = stmt
        .query(params![org.get(), first.get(), last.get()])
        .map_err(map_err)?;
    let mut expected = first;
    while let Some(row) = rows.next().map_err(map_err)? {
        let seq = Seq::new(row.get(0).map_err(map_err)?);
        if seq != expected {
            break;
        }
        each(hash_of(row.get(1).map_err(map_err)?, "entries.hash")?);
        expected = seq.next();
    }
    if expected <= last {
        return Err(StoreError::Other(format!(
            "the chain has no entry hash at seq {expected}: run `stele verify`"
        )));
    }
    Ok(())
}

pub fn personal_digest(conn: &Connection, org: OrgKey, seq: Seq) -> Result<Option<(Hash, Seal)>> {
    let row: Option<(Vec<u8>, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT personal_digest, salt FROM entries WHERE org_id = ? AND seq = ?")
        .and_then(|mut s| {
            s.query_row(params![org.get(), seq.get()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .map_err(map_err)?;
    row.map(|(digest, salt)| {
        Ok((
            hash_of(digest, "personal_digest")?,
            Seal::from_bytes(salt.as_deref())
                .map_err(|e| StoreError::Other(format!("seq {seq}: {e}")))?,
        ))
    })
    .transpose()
}

/// Where the organization's chain was last verified to (`verified_points`).
pub fn last_verified(conn: &Connection, org: OrgKey) -> Result<Option<VerifiedPoint>> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT checkpoint_seq, frontier FROM verified_points WHERE org_id = ?")
        .and_then(|mut s| {
            s.query_row([org.get()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(map_err)?;
    // A row that does not parse is as good as none: the next verification is a full one.
    Ok(row.and_then(|(seq, frontier)| {
        Some(VerifiedPoint {
            checkpoint_seq: Seq::new(seq),
            frontier: serde_json::from_str(&frontier).ok()?,
        })
    }))
}

/// Records where a verification that passed got to.
pub fn record_verified(
    conn: &Connection,
    org: OrgKey,
    point: &VerifiedPoint,
    now: Millis,
) -> Result<()> {
    let frontier =
        serde_json::to_string(&point.frontier).map_err(|e| StoreError::Other(e.to_string()))?;
    conn.execute(
        "INSERT INTO verified_points (org_id, checkpoint_seq, frontier, verified_ms)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (org_id) DO UPDATE SET checkpoint_seq = ?2, frontier = ?3, verified_ms = ?4
         WHERE checkpoint_seq <= ?2",
        params![org.get(), point.checkpoint_seq.get(), frontier, now],
    )
    .map_err(map_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use stele_store::ProblemKind;
    use stele_store::conformance::{event, request};
    use stele_store::prelude::*;
    use stele_store::retention::Cutoffs;

    use super::*;
    use crate::SqliteStore;

    const T0: i64 = 1_767_225_600_000;

    /// [`verify`] of everything on one reader, with a second one to read halves on or without
    /// (the store's own `verify` confirms a failure without one, which would hide a wrong one).
    async fn verify_on_readers(store: &SqliteStore, org: OrgKey, halves: bool) -> VerifyReport {
        let mut second = halves.then(|| store.readers.try_borrow().expect("an idle reader"));
        store
            .read(move |conn, dict| {
                let helper = second.as_mut().map(|b| &mut b.conn);
                let report = verify(conn, helper, dict, org, None, None);
                assert!(
                    second.is_none_or(|b| b.conn.is_some()),
                    "the helper is back"
                );
                report
            })
            .await
            .unwrap()
    }

    /// What [`verify`] reports with halves, checked to be what it reports without.
    async fn verified(store: &SqliteStore, org: OrgKey) -> VerifyReport {
        let report = verify_on_readers(store, org, true).await;
        assert_eq!(report, verify_on_readers(store, org, false).await);
        report
    }

    /// Pieces of 10,000 rows are read in two halves side by side while a reader is idle; the
    /// result is the one piece read as one would give: a change in either half is found at its
    /// `seq`, and a chain whose oldest entries were pruned (where halves do not line up)
    /// verifies, a change past the pruned ones found too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chain_read_in_halves_finds_what_one_read_finds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let store = SqliteStore::open(&path).unwrap();
        let a = store.create_org("a").await.unwrap().key;
        for thousand in 0..23 {
            let events = (0..1000)
                .map(|i| event("create", T0 + thousand * 1000 + i))
                .collect();
            store.append(a, request(events)).await.unwrap();
        }
        let report = verified(&store, a).await;
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries, 23_000);

        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("DROP TRIGGER entries_immutable")
            .unwrap();
        let shift = |seq: i64, by: i64| {
            conn.execute(
                "UPDATE entries SET occurred_ms = occurred_ms + ?1 WHERE seq = ?2",
                [by, seq],
            )
            .unwrap();
        };
        for seq in [3_000, 7_500, 16_000] {
            shift(seq, 1);
            let problem = verified(&store, a).await.problem.unwrap();
            assert_eq!(
                (problem.kind, problem.seq),
                (ProblemKind::Changed, Seq::new(seq))
            );
            shift(seq, -1);
        }
        assert!(verified(&store, a).await.ok);

        // The oldest 3,000 pruned: a piece's first half no longer ends where the second starts.
        let cutoffs = Cutoffs {
            default: Some(T0 + 3_000),
            channels: Default::default(),
        };
        let expired = store.expired_entries(a, &cutoffs, 0, 5_000).await.unwrap();
        let seqs: Vec<Seq> = expired.entries.iter().map(|r| r.entry.seq).collect();
        assert_eq!(seqs.len(), 3_000);
        store.prune_entries(a, &cutoffs, &seqs).await.unwrap();
        let report = verified(&store, a).await;
        assert!(report.ok, "{report:?}");
        shift(9_000, 1);
        let problem = verified(&store, a).await.problem.unwrap();
        assert_eq!(
            (problem.kind, problem.seq),
            (ProblemKind::Changed, Seq::new(9_000))
        );
    }

    /// Verifications one after the other (each with a second reader) and more at once than the
    /// store has readers (the second reader is taken only once the first is held, and only if
    /// one is idle) all finish, and give back every connection and permit they took.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifications_at_once_finish_and_give_back_every_reader() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("stele.db")).unwrap());
        let a = store.create_org("a").await.unwrap().key;
        let events = (0..12_000).map(|i| event("create", T0 + i)).collect();
        store.append(a, request(events)).await.unwrap();
        // One at a time, each takes a second reader.
        for _ in 0..crate::READERS + 1 {
            assert!(store.verify(a, None).await.unwrap().ok);
        }
        let verifications: Vec<_> = (0..3 * crate::READERS)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.verify(a, None).await })
            })
            .collect();
        let all = async {
            for verification in verifications {
                assert!(verification.await.unwrap().unwrap().ok);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), all)
            .await
            .expect("every verification finishes");
        let readers = &store.readers;
        assert_eq!(readers.permits.available_permits(), crate::READERS);
        assert_eq!(readers.idle.lock().unwrap().len(), crate::READERS);
    }
}
