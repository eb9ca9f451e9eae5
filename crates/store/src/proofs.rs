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

/// The error for a subtree a store was asked for and does not hold.
pub fn not_stored(subtree: &Subtree) -> StoreError {
    StoreError::Other(format!(
        "no stored Merkle subtree at level {} index {}: it has not closed, or the store was not \
         upgraded",
        subtree.level, subtree.index
    ))
}

/// Whether the store keeps this subtree's hash.
pub fn is_stored(subtree: &Subtree) -> bool {
    subtree.level >= STORED_LEVEL
}

/// What an inclusion proof needs from the store besides the entry and the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPath {
    /// The hash of the entry before (`None` for `seq` 1, whose predecessor is the genesis hash).
    pub prev_hash: Option<Hash>,
    pub entry_hash: Hash,
    /// The audit path, leaf to root.
    pub path: Vec<Hash>,
}

/// The audit path of leaf `index` in the organization's tree of `size` leaves (RFC 6962
/// `PATH`) from stored subtrees, the same hashes as `merkle::inclusion_proof` over every leaf,
/// with the entry's hash and the one before it (read with the leaves around it).
pub async fn inclusion<S: Integrity + ?Sized>(
    store: &S,
    org: OrgKey,
    index: u64,
    size: u64,
) -> Result<EntryPath> {
    let own = index.saturating_sub(1)..index + 1;
    let (path, around) = range_roots(
        store,
        org,
        &merkle::inclusion_ranges(index, size),
        own.clone(),
    )
    .await?;
    let hash_at = |leaf: u64| around[(leaf - own.start) as usize];
    Ok(EntryPath {
        prev_hash: (index > 0).then(|| hash_at(index - 1)),
        entry_hash: hash_at(index),
        path,
    })
}

/// The audit path of leaf `index` in the organization's tree of `size` leaves, from stored
/// subtrees.
pub async fn inclusion_path<S: Integrity + ?Sized>(
    store: &S,
    org: OrgKey,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>> {
    Ok(inclusion(store, org, index, size).await?.path)
}

/// The consistency proof between the organization's trees of `old_size` and `size` leaves (RFC
/// 6962 `PROOF`), from stored subtrees.
pub async fn consistency_path<S: Integrity + ?Sized>(
    store: &S,
    org: OrgKey,
    old_size: u64,
    size: u64,
) -> Result<Vec<Hash>> {
    let ranges = merkle::consistency_ranges(old_size, size);
    Ok(range_roots(store, org, &ranges, 0..0).await?.0)
}

/// The Merkle Tree Hash of each range, and the entry hashes of the leaves `also`: stored
/// subtrees read in one call, the small ones computed from the entry hashes of the blocks they
/// lie in, all of those read in one more call.
async fn range_roots<S: Integrity + ?Sized>(
    store: &S,
    org: OrgKey,
    ranges: &[Range<u64>],
    also: Range<u64>,
) -> Result<(Vec<Hash>, Vec<Hash>)> {
    let parts: Vec<Vec<Subtree>> = ranges.iter().map(|r| merkle::subtrees(r.clone())).collect();
    let mut known: BTreeMap<Subtree, Hash> = BTreeMap::new();

    let stored: Vec<Subtree> = parts.iter().flatten().copied().filter(is_stored).collect();
    if !stored.is_empty() {
        let hashes = store.stored_subtrees(org, stored.clone()).await?;
        known.extend(stored.into_iter().zip(hashes));
    }

    // The leaves to read, by the block they lie in: from the first leaf any small subtree (or
    // `also`) needs there to the last.
    let mut blocks: BTreeMap<u64, Range<u64>> = BTreeMap::new();
    let small = parts.iter().flatten().filter(|t| !is_stored(t));
    let wanted = small
        .map(Subtree::leaves)
        .chain((!also.is_empty()).then(|| also.clone()));
    for leaves in wanted {
        blocks
            .entry(leaves.start / BLOCK)
            .and_modify(|r| *r = r.start.min(leaves.start)..r.end.max(leaves.end))
            .or_insert(leaves);
    }
    // `also` may straddle two blocks; its spans merge where they touch.
    let mut spans: Vec<Range<u64>> = Vec::new();
    for span in blocks.into_values() {
        match spans.last_mut() {
            Some(last) if last.end >= span.start => last.end = last.end.max(span.end),
            _ => spans.push(span),
        }
    }
    let seqs = spans
        .iter()
        .map(|r| Seq::new(r.start as i64 + 1)..=Seq::new(r.end as i64))
        .collect();
    let read = store.entry_hashes_of(org, seqs).await?;
    let mut around = Vec::new();
    for (span, entry_hashes) in spans.iter().zip(read) {
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
        if also.start >= span.start && also.end <= span.end && !also.is_empty() {
            around = entry_hashes
                [(also.start - span.start) as usize..(also.end - span.start) as usize]
                .to_vec();
        }
    }

    let roots = parts
        .iter()
        .map(|subtrees| merkle::fold(&subtrees.iter().map(|t| known[t]).collect::<Vec<_>>()))
        .collect();
    Ok((roots, around))
}
