//! Proofs from stored subtrees: what both backends share about building an RFC 6962 inclusion or
//! consistency proof without reading the whole tree.
//!
//! Every hash of a proof is the Merkle Tree Hash of a range of leaves, and every such range is a
//! handful of aligned perfect subtrees (`stele_core::merkle::subtrees`). The writer stores the
//! hash of each perfect subtree of [`STORED_LEVEL`] and above as the entry that completes it is
//! appended, in the same transaction; a proof reads those (O(log n) point reads) and computes
//! the smaller ones from the entry hashes around the leaf and at the tree's right edge, at most
//! [`BLOCK`] of them per place. So a proof costs the same at a thousand entries and at a hundred
//! million.

use std::collections::BTreeMap;
use std::ops::Range;

use stele_core::Seq;
use stele_core::merkle::{self, Hash, Subtree};

use crate::{Integrity, OrgKey, Result, StoreError};

/// The smallest subtree level a store keeps: subtrees of 256 leaves and larger, about one stored
/// hash per 128 entries in all levels together. Below it a proof hashes at most 256 entry
/// hashes per place it needs, which costs less than reading a stored hash per level would.
pub const STORED_LEVEL: u8 = 8;

/// The leaves under one subtree of [`STORED_LEVEL`].
pub const BLOCK: u64 = 1 << STORED_LEVEL;

/// Whether the store keeps this subtree's hash.
pub fn is_stored(subtree: &Subtree) -> bool {
    subtree.level >= STORED_LEVEL
}

/// The audit path of leaf `index` in the organization's tree of `size` leaves (RFC 6962
/// `PATH`), from stored subtrees; the same hashes as `merkle::inclusion_proof` over every leaf.
pub async fn inclusion_path<S: Integrity + ?Sized>(
    store: &S,
    org: OrgKey,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>> {
    range_roots(store, org, &merkle::inclusion_ranges(index, size)).await
}

/// The consistency proof between the organization's trees of `old_size` and `size` leaves (RFC
/// 6962 `PROOF`), from stored subtrees.
pub async fn consistency_path<S: Integrity + ?Sized>(
    store: &S,
    org: OrgKey,
    old_size: u64,
    size: u64,
) -> Result<Vec<Hash>> {
    range_roots(store, org, &merkle::consistency_ranges(old_size, size)).await
}

/// The Merkle Tree Hash of each range: stored subtrees read in one call, the small ones computed
/// from the entry hashes of the blocks they lie in, one read per block.
async fn range_roots<S: Integrity + ?Sized>(
    store: &S,
    org: OrgKey,
    ranges: &[Range<u64>],
) -> Result<Vec<Hash>> {
    let parts: Vec<Vec<Subtree>> = ranges.iter().map(|r| merkle::subtrees(r.clone())).collect();
    let mut known: BTreeMap<Subtree, Hash> = BTreeMap::new();

    let stored: Vec<Subtree> = parts.iter().flatten().copied().filter(is_stored).collect();
    if !stored.is_empty() {
        let hashes = store.stored_subtrees(org, stored.clone()).await?;
        known.extend(stored.into_iter().zip(hashes));
    }

    // The small subtrees, by the block they lie in: their leaves are read once per block, from
    // the first leaf any of them needs to the last.
    let mut blocks: BTreeMap<u64, Range<u64>> = BTreeMap::new();
    for t in parts.iter().flatten().filter(|t| !is_stored(t)) {
        let leaves = t.leaves();
        blocks
            .entry(leaves.start / BLOCK)
            .and_modify(|r| *r = r.start.min(leaves.start)..r.end.max(leaves.end))
            .or_insert(leaves);
    }
    for span in blocks.into_values() {
        let seqs = Seq::new(span.start as i64 + 1)..=Seq::new(span.end as i64);
        let entry_hashes = store.entry_hashes(org, seqs).await?;
        if entry_hashes.len() as u64 != span.end - span.start {
            return Err(StoreError::Other(format!(
                "the chain has a gap between leaves {span:?}: run `stele verify`"
            )));
        }
        let leaves: Vec<Hash> = entry_hashes.iter().map(|h| merkle::leaf_hash(h)).collect();
        for t in parts.iter().flatten().filter(|t| !is_stored(t)) {
            let r = t.leaves();
            if r.start >= span.start && r.end <= span.end {
                let slice = &leaves[(r.start - span.start) as usize..(r.end - span.start) as usize];
                known.insert(*t, merkle::root(slice));
            }
        }
    }

    Ok(parts
        .iter()
        .map(|subtrees| merkle::fold(&subtrees.iter().map(|t| known[t]).collect::<Vec<_>>()))
        .collect())
}
