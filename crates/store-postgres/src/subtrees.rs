//! Stored Merkle subtrees (`stele_store::proofs`): the writer inserts each closed subtree of
//! `STORED_LEVEL` and up with the entry that closes it ([`crate::writer::Group::flush`]); proofs
//! read them; chains older than the table have theirs computed once, by the first process that
//! opens the database after migration 14.

use std::time::Instant;

use stele_core::Seq;
use stele_core::merkle::{self, Frontier, Hash, Subtree};
use stele_store::OrgKey;
use stele_store::proofs::{self, is_stored};
use tokio_postgres::Row;

use crate::codec::hash_of;
use crate::error::R;
use crate::integrity::entry_hashes;
use crate::pool::{Conn, Tx};

/// Entry hashes read per query while filling (2 MiB of hashes).
const FILL_CHUNK: i64 = 65_536;

/// The stored hashes of `subtrees`, in order; an error names the first one not stored.
pub async fn stored(conn: &mut Conn, org: OrgKey, subtrees: &[Subtree]) -> R<Vec<Hash>> {
    let (levels, indexes) = columns(subtrees);
    let rows = conn.query(STORED, &[&org.get(), &levels, &indexes]).await?;
    subtrees
        .iter()
        .zip(values_in(rows)?)
        .map(|(t, bytes)| match bytes {
            Some(bytes) => hash_of(bytes, "merkle_subtrees.hash"),
            None => Err(proofs::not_stored(t).into()),
        })
        .collect()
}

/// The stored values of `subtrees`, in order, as stored (`None` for one not stored): what
/// verification compares with the chain, inside its snapshot.
pub async fn stored_as_is(
    tx: &mut Tx<'_>,
    org: OrgKey,
    subtrees: &[Subtree],
) -> R<Vec<Option<Vec<u8>>>> {
    let (levels, indexes) = columns(subtrees);
    values_in(tx.query(STORED, &[&org.get(), &levels, &indexes]).await?)
}

/// One row per subtree asked for (`$2` levels, `$3` indexes), in that order, its hash or NULL.
/// A subquery per subtree, so each is one primary-key lookup whatever the planner thinks of the
/// table's size (a join was planned as a scan of all the organization's subtrees).
const STORED: &str = "SELECT (SELECT s.hash FROM merkle_subtrees s
                 WHERE s.org_id = $1 AND s.level = w.level AND s.idx = w.idx)
     FROM unnest($2::int2[], $3::int8[]) WITH ORDINALITY AS w (level, idx, n)
     ORDER BY w.n";

fn columns(subtrees: &[Subtree]) -> (Vec<i16>, Vec<i64>) {
    subtrees
        .iter()
        .map(|t| (i16::from(t.level), t.index as i64))
        .unzip()
}

fn values_in(rows: Vec<Row>) -> R<Vec<Option<Vec<u8>>>> {
    Ok(rows
        .into_iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Computes the stored subtrees of the chains migration 14 found older than the table, from
/// their entry hashes (read in chunks, never the whole chain in memory), once per organization:
/// the rows of `merkle_subtrees_to_fill`. Processes that open the database at once compute the
/// same hashes and the second insert changes nothing; subtrees closed since by a writer are
/// beyond `up_to_seq`.
pub async fn fill_missing(conn: &mut Conn) -> R<()> {
    let due = conn
        .query(
            "SELECT org_id, up_to_seq FROM merkle_subtrees_to_fill ORDER BY org_id",
            &[],
        )
        .await?;
    for row in due {
        let org = OrgKey::new(row.try_get(0)?);
        let up_to: i64 = row.try_get(1)?;
        let started = Instant::now();
        let mut frontier = Frontier::new();
        let (mut levels, mut indexes, mut hashes) = (vec![], vec![], vec![]);
        let mut from = 1;
        while from <= up_to {
            let to = (from + FILL_CHUNK - 1).min(up_to);
            for hash in entry_hashes(conn, org, Seq::new(from)..=Seq::new(to)).await? {
                frontier.push_closing(merkle::leaf_hash(&hash), |t, h| {
                    if is_stored(&t) {
                        levels.push(i16::from(t.level));
                        indexes.push(t.index as i64);
                        hashes.push(h.to_vec());
                    }
                });
            }
            from = to + 1;
        }
        let mut tx = conn.transaction().await?;
        tx.execute(
            "INSERT INTO merkle_subtrees (org_id, level, idx, hash)
             SELECT $1, * FROM unnest($2::int2[], $3::int8[], $4::bytea[])
             ON CONFLICT DO NOTHING",
            &[&org.get(), &levels, &indexes, &hashes],
        )
        .await?;
        tx.execute(
            "DELETE FROM merkle_subtrees_to_fill WHERE org_id = $1",
            &[&org.get()],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            org = org.get(),
            entries = up_to,
            subtrees = levels.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "stored the Merkle subtrees of a chain older than them"
        );
    }
    Ok(())
}
