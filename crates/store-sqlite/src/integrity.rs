//! Checkpoints and verification of the hash chain (the format is `stele_core::chain`).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;
use stele_core::ActorType;
use stele_core::chain::{self, ERASURE_DETAILED_ACTION, Personal, Salt};
use stele_core::checkpoint::{Checkpoint, PublicKey, SignedCheckpoint, SigningKey};
use stele_core::merkle::{self, Frontier, Hash};
use stele_core::time::Millis;
use stele_store::{IntegrityProblem, OrgId, ProblemKind, Result, StoreError, VerifyReport};

use crate::codec::{ENTRY_COLUMNS, decode_row};
use crate::dict::Dict;
use crate::error::map_err;
use crate::terms::{self, Field};

/// How far ahead verification looks for the entry that belongs at a position, to tell a
/// reordering from a change.
const REORDER_WINDOW: usize = 1000;

fn hash_of(bytes: Vec<u8>, what: &str) -> Result<Hash> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Other(format!("{what} is not 32 bytes")))
}

/// Signs a checkpoint for every organization whose chain moved past its last checkpoint, if that
/// one is at least `every_ms` old (or `force`). Returns how many were made.
pub fn make_checkpoints(
    tx: &Transaction<'_>,
    key: &SigningKey,
    every_ms: Millis,
    force: bool,
    now: Millis,
) -> Result<usize> {
    let due: Vec<(OrgId, String, i64, Vec<u8>, String)> = {
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
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
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
                org,
                seq,
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

/// Checkpoints of one organization in `seq` order (ascending), optionally only the newest `limit`.
pub fn checkpoints(
    conn: &Connection,
    org: OrgId,
    limit: Option<usize>,
) -> Result<Vec<SignedCheckpoint>> {
    let org_id: String = conn
        .query_row("SELECT id FROM orgs WHERE key = ?", [org], |r| r.get(0))
        .map_err(map_err)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, chain_head, merkle_root, created_ms, key_id, signature FROM checkpoints
             WHERE org_id = ? ORDER BY seq DESC LIMIT ?",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map(params![org, limit.map_or(-1, |l| l as i64)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
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

/// One stored entry as the chain sees it.
struct ChainRow {
    seq: i64,
    id: String,
    recorded_at: Millis,
    event_digest: Hash,
    /// Whether the stored personal fields still match their digest, or, once erased, are exactly
    /// a pseudonym that a recorded erasure introduced.
    personal_intact: bool,
    hash: Hash,
}

const CHAIN_COLUMNS: &str = "e.salt, e.personal_digest, e.erased, e.hash";

/// Which pseudonym a recorded erasure gave each erased entry, by `seq`. Erasure records are
/// chained like any entry and only Stele can write their reserved detailed action, so an erased
/// row must show exactly the pseudonym its erasure recorded, and nothing else.
fn recorded_pseudonyms(conn: &Connection, dict: &Dict, org: OrgId) -> Result<HashMap<i64, String>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entry_terms t CROSS JOIN entries e ON e.pk = t.rowid
         WHERE t.entry_terms MATCH ?1 AND e.org_id = ?2"
    );
    dict.refresh(conn).map_err(map_err)?;
    let mut stmt = conn.prepare(&sql).map_err(map_err)?;
    let mut rows = stmt
        .query(params![
            terms::term(org, Field::DetailedAction, ERASURE_DETAILED_ACTION),
            org
        ])
        .map_err(map_err)?;
    let mut out = HashMap::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        let Ok((_, entry)) = decode_row(row, dict).map_err(map_err)? else {
            continue;
        };
        let e = &entry.event;
        if e.actor.kind == ActorType::System
            && let Some(Value::String(p)) = e.metadata.get("pseudonym")
        {
            for seq in e.entity_ids.iter().filter_map(|s| s.parse::<i64>().ok()) {
                out.insert(seq, p.clone());
            }
        }
    }
    Ok(out)
}

fn chain_rows<'c>(
    conn: &'c Connection,
    dict: &'c Dict,
    org: OrgId,
    from_seq: i64,
    limit: Option<usize>,
    pseudonyms: &HashMap<i64, String>,
) -> Result<Vec<ChainRow>> {
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
            .query(params![org, from_seq, limit.map_or(-1, |l| l as i64)])
            .map_err(map_err)?;
        let mut missing_dict = false;
        while let Some(row) = rows.next().map_err(map_err)? {
            let Ok((_, entry)) = decode_row(row, dict).map_err(map_err)? else {
                missing_dict = true;
                break;
            };
            let n = ENTRY_COLUMN_COUNT;
            let salt: Option<Vec<u8>> = row.get(n).map_err(map_err)?;
            let personal_digest = hash_of(row.get(n + 1).map_err(map_err)?, "personal_digest")?;
            let erased: bool = row.get(n + 2).map_err(map_err)?;
            let hash = hash_of(row.get(n + 3).map_err(map_err)?, "hash")?;
            let personal = Personal::of(&entry.event);
            let personal_intact = if erased {
                let only_pseudonym = Personal {
                    actor_id: personal.actor_id.clone(),
                    ..Personal::default()
                };
                personal == only_pseudonym
                    && personal.actor_id.as_ref() == pseudonyms.get(&entry.seq)
            } else {
                salt.and_then(|s| <[u8; 16]>::try_from(s).ok())
                    .is_some_and(|salt| personal.digest(&salt) == personal_digest)
            };
            out.push(ChainRow {
                seq: entry.seq,
                event_digest: chain::event_digest(&entry.event, &personal_digest),
                id: entry.id,
                recorded_at: entry.recorded_at,
                personal_intact,
                hash,
            });
        }
        if !missing_dict {
            return Ok(out);
        }
        dict.refresh(conn).map_err(map_err)?;
    }
    Err(StoreError::Other(
        "entry refers to an unknown dictionary id".into(),
    ))
}

/// How many columns [`ENTRY_COLUMNS`] selects.
const ENTRY_COLUMN_COUNT: usize = 14;

/// Recomputes the organization's chain in batches and checks it against every checkpoint.
pub fn verify(
    conn: &Connection,
    dict: &Dict,
    org: OrgId,
    key: Option<&PublicKey>,
) -> Result<VerifyReport> {
    let org_id: String = conn
        .query_row("SELECT id FROM orgs WHERE key = ?", [org], |r| r.get(0))
        .map_err(map_err)?;
    let state: Option<i64> = conn
        .query_row("SELECT seq FROM chain_state WHERE org_id = ?", [org], |r| {
            r.get(0)
        })
        .optional()
        .map_err(map_err)?;
    let checkpoints = checkpoints(conn, org, None)?;
    let pseudonyms = recorded_pseudonyms(conn, dict, org)?;
    let mut report = VerifyReport {
        org_id: org_id.clone(),
        ok: true,
        entries: 0,
        first_seq: None,
        last_seq: None,
        checkpoints: 0,
        problem: None,
    };
    let fail = |mut report: VerifyReport, seq: i64, kind: ProblemKind, message: String| {
        report.ok = false;
        report.problem = Some(IntegrityProblem { seq, kind, message });
        Ok(report)
    };

    let mut prev = chain::genesis(&org_id);
    let mut frontier = Frontier::new();
    let mut expected = 1i64;
    let mut next_checkpoint = checkpoints.iter().peekable();
    loop {
        let batch = chain_rows(conn, dict, org, expected, Some(10_000), &pseudonyms)?;
        if batch.is_empty() {
            break;
        }
        for (i, row) in batch.iter().enumerate() {
            if row.seq != expected {
                return fail(
                    report,
                    expected,
                    ProblemKind::Missing,
                    format!(
                        "entry {expected} is missing (the next present is {})",
                        row.seq
                    ),
                );
            }
            let hash = chain::entry_hash(
                &prev,
                &org_id,
                row.seq,
                &row.id,
                row.recorded_at,
                &row.event_digest,
            );
            if hash != row.hash || !row.personal_intact {
                // Does an entry further on belong here? Then the two were reordered.
                let ahead = chain_rows(
                    conn,
                    dict,
                    org,
                    expected + 1,
                    Some(REORDER_WINDOW),
                    &pseudonyms,
                )?;
                let _ = i;
                if let Some(other) = ahead.iter().find(|o| {
                    chain::entry_hash(
                        &prev,
                        &org_id,
                        expected,
                        &o.id,
                        o.recorded_at,
                        &o.event_digest,
                    ) == o.hash
                }) {
                    return fail(
                        report,
                        expected,
                        ProblemKind::Reordered,
                        format!(
                            "entry {expected} is out of order: the entry stored as {} belongs at {expected}",
                            other.seq
                        ),
                    );
                }
                let what = if row.personal_intact {
                    "its content no longer matches its hash"
                } else {
                    "its personal fields no longer match their digest or a recorded erasure"
                };
                return fail(
                    report,
                    expected,
                    ProblemKind::Changed,
                    format!("entry {expected} was changed: {what}"),
                );
            }
            prev = hash;
            frontier.push(merkle::leaf_hash(&hash));
            report.entries += 1;
            report.first_seq.get_or_insert(row.seq);
            report.last_seq = Some(row.seq);
            while let Some(cp) = next_checkpoint.next_if(|cp| cp.checkpoint.seq <= row.seq) {
                if let Some(problem) = check_checkpoint(cp, key, row.seq, &hash, &frontier) {
                    return fail(report, cp.checkpoint.seq, problem.0, problem.1);
                }
                report.checkpoints += 1;
            }
            expected += 1;
        }
    }
    if let Some(cp) = next_checkpoint.next() {
        return fail(
            report,
            expected,
            ProblemKind::Missing,
            format!(
                "entries from {expected} on are missing: a checkpoint covers up to {}",
                cp.checkpoint.seq
            ),
        );
    }
    if let Some(state_seq) = state
        && state_seq >= expected
    {
        return fail(
            report,
            expected,
            ProblemKind::Missing,
            format!(
                "entries from {expected} on are missing: the chain was recorded up to {state_seq}"
            ),
        );
    }
    Ok(report)
}

fn check_checkpoint(
    cp: &SignedCheckpoint,
    key: Option<&PublicKey>,
    at_seq: i64,
    head: &Hash,
    frontier: &Frontier,
) -> Option<(ProblemKind, String)> {
    let seq = cp.checkpoint.seq;
    if let Some(key) = key
        && let Err(e) = cp.verify(key)
    {
        return Some((
            ProblemKind::BadSignature,
            format!("checkpoint at {seq}: {e}"),
        ));
    }
    if seq != at_seq {
        return Some((
            ProblemKind::Missing,
            format!("checkpoint at {seq} names an entry that is missing"),
        ));
    }
    if &cp.checkpoint.chain_head != head || cp.checkpoint.merkle_root != frontier.root() {
        return Some((
            ProblemKind::CheckpointMismatch,
            format!(
                "checkpoint at {seq} is signed, but the entries up to {seq} no longer hash to it"
            ),
        ));
    }
    None
}

pub fn checkpoint_at(conn: &Connection, org: OrgId, seq: i64) -> Result<Option<SignedCheckpoint>> {
    // Checkpoints are few per organization; reading them in order keeps one code path.
    Ok(checkpoints(conn, org, None)?
        .into_iter()
        .find(|c| c.checkpoint.seq == seq))
}

pub fn chain_hashes(conn: &Connection, org: OrgId, up_to: i64) -> Result<Vec<Hash>> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, hash FROM entries WHERE org_id = ? AND seq <= ? ORDER BY seq")
        .map_err(map_err)?;
    let mut rows = stmt.query(params![org, up_to]).map_err(map_err)?;
    let mut out = Vec::with_capacity(up_to.max(0) as usize);
    while let Some(row) = rows.next().map_err(map_err)? {
        let seq: i64 = row.get(0).map_err(map_err)?;
        if seq != out.len() as i64 + 1 {
            return Err(StoreError::Other(format!(
                "the chain has a gap before seq {seq}: run `stele verify`"
            )));
        }
        out.push(hash_of(row.get(1).map_err(map_err)?, "entries.hash")?);
    }
    Ok(out)
}

pub fn personal_digest(
    conn: &Connection,
    org: OrgId,
    seq: i64,
) -> Result<Option<(Hash, Option<Salt>)>> {
    let row: Option<(Vec<u8>, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT personal_digest, salt FROM entries WHERE org_id = ? AND seq = ?")
        .and_then(|mut s| {
            s.query_row(params![org, seq], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(map_err)?;
    row.map(|(digest, salt)| {
        Ok((
            hash_of(digest, "personal_digest")?,
            salt.and_then(|s| s.try_into().ok()),
        ))
    })
    .transpose()
}
