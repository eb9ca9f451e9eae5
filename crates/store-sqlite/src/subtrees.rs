//! Stored Merkle subtrees (`stele_store::proofs`): the writer appends each closed subtree of
//! `STORED_LEVEL` and up with the entry that closes it; proofs read them; chains older than the
//! table have theirs computed once, when the store opens.

use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use stele_core::Seq;
use stele_core::merkle::{self, Frontier, Hash, Subtree};
use stele_store::proofs::{self, is_stored};
use stele_store::{OrgKey, Result};

use crate::codec::hash_of;
use crate::error::map_err;
use crate::integrity::each_entry_hash;

/// Appends closed subtrees of one organization (the writer, inside its group transaction).
pub fn append(tx: &Transaction<'_>, org: OrgKey, closed: &[(Subtree, Hash)]) -> Result<()> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO merkle_subtrees (org_id, level, idx, hash) VALUES (?, ?, ?, ?)",
        )
        .map_err(map_err)?;
    for (t, hash) in closed {
        insert
            .execute(params![org.get(), t.level, t.index as i64, &hash[..]])
            .map_err(map_err)?;
    }
    Ok(())
}

/// The stored hashes of `subtrees`, in order; an error names the first one not stored.
pub fn stored(conn: &Connection, org: OrgKey, subtrees: &[Subtree]) -> Result<Vec<Hash>> {
    let found = stored_as_is(conn, org, subtrees)?;
    subtrees
        .iter()
        .zip(found)
        .map(|(t, bytes)| match bytes {
            Some(bytes) => hash_of(bytes, "merkle_subtrees.hash"),
            None => Err(proofs::not_stored(t)),
        })
        .collect()
}

/// The stored values of `subtrees`, in order, as stored (`None` for one not stored): what
/// verification compares with the chain.
pub fn stored_as_is(
    conn: &Connection,
    org: OrgKey,
    subtrees: &[Subtree],
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut select = conn
        .prepare_cached(
            "SELECT hash FROM merkle_subtrees WHERE org_id = ? AND level = ? AND idx = ?",
        )
        .map_err(map_err)?;
    subtrees
        .iter()
        .map(|t| {
            select
                .query_row(params![org.get(), t.level, t.index as i64], |r| r.get(0))
                .optional()
                .map_err(map_err)
        })
        .collect()
}

/// Computes the stored subtrees of the chains migration 14 found older than the table, from
/// their entry hashes, once per organization (the rows of `merkle_subtrees_to_fill`). The hashes
/// are read in one read transaction and the subtrees written in a short write transaction of
/// their own; subtrees closed since by a writer are already there and are left alone.
pub fn fill_missing(conn: &Connection) -> Result<()> {
    let due: Vec<(OrgKey, Seq)> = conn
        .prepare("SELECT org_id, up_to_seq FROM merkle_subtrees_to_fill ORDER BY org_id")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((OrgKey::new(r.get(0)?), Seq::new(r.get(1)?))))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(map_err)?;
    for (org, up_to) in due {
        let started = Instant::now();
        let mut closed = Vec::new();
        let mut frontier = Frontier::new();
        conn.execute_batch("BEGIN").map_err(map_err)?;
        let read = each_entry_hash(conn, org, Seq::FIRST..=up_to, |hash| {
            frontier.push_closing(merkle::leaf_hash(&hash), |t, h| {
                if is_stored(&t) {
                    closed.push((t, *h));
                }
            })
        });
        conn.execute_batch("COMMIT").map_err(map_err)?;
        read?;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err)?;
        let written = (|| {
            let mut insert = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO merkle_subtrees (org_id, level, idx, hash)
                     VALUES (?, ?, ?, ?)",
                )
                .map_err(map_err)?;
            for (t, hash) in &closed {
                insert
                    .execute(params![org.get(), t.level, t.index as i64, &hash[..]])
                    .map_err(map_err)?;
            }
            conn.execute(
                "DELETE FROM merkle_subtrees_to_fill WHERE org_id = ?",
                [org.get()],
            )
            .map_err(map_err)
        })();
        match written {
            Ok(_) => conn.execute_batch("COMMIT").map_err(map_err)?,
            Err(e) => {
                conn.execute_batch("ROLLBACK").map_err(map_err)?;
                return Err(e);
            }
        }
        tracing::info!(
            org = org.get(),
            entries = up_to.get(),
            subtrees = closed.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "stored the Merkle subtrees of a chain older than them"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use stele_store::ProblemKind;
    use stele_store::conformance::{assert_proofs_match_every_leaf, event, request};
    use stele_store::prelude::*;

    use super::*;
    use crate::SqliteStore;

    const T0: i64 = 1_767_225_600_000;

    /// Every stored subtree: organization, level, index, hash.
    fn subtree_rows(conn: &Connection) -> Vec<(i64, i64, i64, Vec<u8>)> {
        conn.prepare("SELECT org_id, level, idx, hash FROM merkle_subtrees ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
    }

    /// A database of schema 13 (no stored subtrees) gets them when it opens, the same hashes a
    /// writer would have stored, and its proofs are those of every leaf; the chains' later
    /// entries keep adding them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chains_older_than_the_table_get_their_subtrees_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let (a, b) = {
            let store = SqliteStore::open(&path).unwrap();
            let a = store.create_org("a").await.unwrap().key;
            let b = store.create_org("b").await.unwrap().key;
            for (org, n) in [(a, 700), (b, 100), (a, 70)] {
                let events = (0..n).map(|i| event("create", T0 + i)).collect();
                store.append(org, request(events)).await.unwrap();
            }
            (a, b)
        };
        let written = {
            let conn = Connection::open(&path).unwrap();
            let rows = subtree_rows(&conn);
            // Back to schema 13, as the release before this table left it.
            conn.execute_batch(
                "DROP TABLE event_keys;
                 DROP TABLE streams;
                 DROP TABLE stream_cursors;
                 DROP TABLE merkle_subtrees;
                 DROP TABLE merkle_subtrees_to_fill;
                 DROP TABLE verified_points;
                 PRAGMA user_version = 13;",
            )
            .unwrap();
            rows
        };
        // 770 entries of `a`: three subtrees of 256 and one of 512; `b` has none.
        assert_eq!(written.len(), 4);

        let store = SqliteStore::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(subtree_rows(&conn), written);
        let left: i64 = conn
            .query_row("SELECT count(*) FROM merkle_subtrees_to_fill", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(left, 0);

        // More entries close more subtrees on top of the filled ones.
        let events = (0..300).map(|i| event("update", T0 + i)).collect();
        store.append(a, request(events)).await.unwrap();
        assert_proofs_match_every_leaf(&store, a, 770, 1070).await;
        assert!(store.verify(b, None).await.unwrap().ok);
        // Stored subtrees are guarded like the chain they summarise.
        for statement in [
            "UPDATE merkle_subtrees SET hash = x'00'",
            "DELETE FROM merkle_subtrees",
        ] {
            let refused = conn.execute(statement, []).unwrap_err().to_string();
            assert!(
                refused.contains("the chain only moves forward"),
                "{statement}: {refused}"
            );
        }

        // Tampered with anyway (the guard dropped): `verify` finds it, at the subtree's last
        // entry, changed or missing.
        assert!(store.verify(a, None).await.unwrap().ok);
        conn.execute_batch(
            "DROP TRIGGER merkle_subtrees_immutable;
             DROP TRIGGER merkle_subtrees_kept;
             UPDATE merkle_subtrees SET hash = zeroblob(32) WHERE level = 8 AND idx = 1;",
        )
        .unwrap();
        let problem = store.verify(a, None).await.unwrap().problem.unwrap();
        assert_eq!(
            (problem.kind, problem.seq),
            (ProblemKind::SubtreeMismatch, Seq::new(512))
        );
        assert!(problem.message.contains("disagrees"), "{}", problem.message);
        conn.execute(
            "DELETE FROM merkle_subtrees WHERE level = 8 AND idx = 1",
            [],
        )
        .unwrap();
        let problem = store.verify(a, None).await.unwrap().problem.unwrap();
        assert_eq!(
            (problem.kind, problem.seq),
            (ProblemKind::SubtreeMismatch, Seq::new(512))
        );
        assert!(problem.message.contains("missing"), "{}", problem.message);
    }

    /// Among thousands of entries, verification names the first changed one by its `seq`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_changed_among_thousands_is_found_at_its_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let store = SqliteStore::open(&path).unwrap();
        let a = store.create_org("a").await.unwrap().key;
        let events = (0..1500).map(|i| event("create", T0 + i)).collect();
        store.append(a, request(events)).await.unwrap();
        assert!(store.verify(a, None).await.unwrap().ok);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER entries_immutable;
             UPDATE entries SET occurred_ms = occurred_ms + 1 WHERE seq IN (1200, 1400);",
        )
        .unwrap();
        let problem = store.verify(a, None).await.unwrap().problem.unwrap();
        assert_eq!(
            (problem.kind, problem.seq),
            (ProblemKind::Changed, Seq::new(1200))
        );
    }
}
