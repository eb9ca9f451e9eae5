//! The Merkle tree over an organization's entries: RFC 6962 §2.1 (RFC 9162 §2.1) with SHA-256.
//!
//! Leaf `i` is the entry with `seq = i + 1`; what a leaf's bytes are is decided elsewhere, here a
//! leaf is only its hash. The hashes are domain-separated as in the RFC:
//!
//! - leaf: `SHA-256(0x00 || data)` ([`leaf_hash`]),
//! - interior node: `SHA-256(0x01 || left || right)` ([`node_hash`]),
//! - the empty tree: `SHA-256("")` ([`empty_root`]).
//!
//! The Merkle Tree Hash of `n > 1` leaves splits them at `k`, the largest power of two smaller
//! than `n`, and hashes the roots of `D[0..k]` and `D[k..n]` together ([`root`]).
//!
//! The server keeps a [`Frontier`] to know the current root after every append without reading
//! old leaves, computes inclusion and consistency proofs from the stored leaf hashes
//! ([`inclusion_proof`], [`consistency_proof`]), and anyone can check a proof with nothing but
//! hashes ([`verify_inclusion`], [`verify_consistency`], the RFC 9162 §2.1.3.2 and §2.1.4.2
//! algorithms).

use std::ops::Range;

use hex::FromHex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `SHA-256("")`: the root of the tree with no leaves.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n`. Requires `n >= 2`.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle Tree Hash (RFC 6962 §2.1) of a list of leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// A perfect subtree in its aligned place: the `2^level` leaves from `index << level` on. Every
/// Merkle Tree Hash is a fold of such subtrees ([`subtrees`], [`fold`]); a store that keeps the
/// hashes of the large ones as they close ([`Frontier::push_closing`]) can build any proof from
/// O(log n) of them instead of reading every leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subtree {
    pub level: u8,
    pub index: u64,
}

impl Subtree {
    /// The leaf indexes it covers.
    pub fn leaves(&self) -> Range<u64> {
        (self.index << self.level)..((self.index + 1) << self.level)
    }
}

/// The perfect subtrees that leaves `range` split into, largest first (one per set bit of the
/// range's length). Every range a proof names ([`inclusion_ranges`], [`consistency_ranges`])
/// starts at a multiple of a power of two at least as large as itself, so they are aligned, and
/// [`fold`] of their hashes is the Merkle Tree Hash of the range.
pub fn subtrees(range: Range<u64>) -> Vec<Subtree> {
    let mut start = range.start;
    let len = range.end.saturating_sub(range.start);
    let mut out = Vec::with_capacity(len.count_ones() as usize);
    for level in (0..u64::BITS as u8).rev() {
        if len >> level & 1 == 1 {
            debug_assert_eq!(start % (1 << level), 0, "{range:?} is not aligned");
            out.push(Subtree {
                level,
                index: start >> level,
            });
            start += 1 << level;
        }
    }
    out
}

/// The Merkle Tree Hash of consecutive perfect subtrees given largest first ([`subtrees`]):
/// RFC 6962 splits off the largest power of two on the left, so the right end folds first.
pub fn fold(hashes: &[Hash]) -> Hash {
    let mut nodes = hashes.iter().rev();
    match nodes.next() {
        None => empty_root(),
        Some(last) => nodes.fold(*last, |acc, left| node_hash(left, &acc)),
    }
}

/// The leaf ranges whose Merkle Tree Hashes make up the audit path (RFC 6962 §2.1.1 `PATH`) of
/// leaf `index` in a tree of `size` leaves, leaf to root.
///
/// # Panics
///
/// If `index >= size`.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<Range<u64>> {
    assert!(
        index < size,
        "inclusion_proof: index {index} is not below the tree size {size}"
    );
    let mut ranges = Vec::new();
    path(index, 0..size, &mut ranges);
    ranges
}

fn path(m: u64, tree: Range<u64>, out: &mut Vec<Range<u64>>) {
    let n = tree.end - tree.start;
    if n <= 1 {
        return;
    }
    let mid = tree.start + split(n);
    if m < mid - tree.start {
        path(m, tree.start..mid, out);
        out.push(mid..tree.end);
    } else {
        path(m - (mid - tree.start), mid..tree.end, out);
        out.push(tree.start..mid);
    }
}

/// The leaf ranges whose Merkle Tree Hashes make up the consistency proof (RFC 6962 §2.1.2
/// `PROOF`) between the first `old_size` leaves and a tree of `size` leaves. Empty when
/// `old_size` is 0 or `size`.
///
/// # Panics
///
/// If `old_size > size`.
pub fn consistency_ranges(old_size: u64, size: u64) -> Vec<Range<u64>> {
    assert!(
        old_size <= size,
        "consistency_proof: old size {old_size} is above the tree size {size}"
    );
    let mut ranges = Vec::new();
    if old_size > 0 {
        subproof(old_size, 0..size, true, &mut ranges);
    }
    ranges
}

fn subproof(m: u64, tree: Range<u64>, complete: bool, out: &mut Vec<Range<u64>>) {
    let n = tree.end - tree.start;
    if m == n {
        if !complete {
            out.push(tree);
        }
        return;
    }
    let k = split(n);
    let mid = tree.start + k;
    if m <= k {
        subproof(m, tree.start..mid, complete, out);
        out.push(mid..tree.end);
    } else {
        subproof(m - k, mid..tree.end, false, out);
        out.push(tree.start..mid);
    }
}

/// The audit path (RFC 6962 §2.1.1 `PATH`) of leaf `index`: the sibling hashes from the leaf up to
/// the root, which [`verify_inclusion`] accepts. Hashes every leaf; a store builds the same path
/// from its stored subtrees with [`inclusion_ranges`].
///
/// # Panics
///
/// If `index >= leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    roots_of(leaves, inclusion_ranges(index as u64, leaves.len() as u64))
}

/// The consistency proof (RFC 6962 §2.1.2 `PROOF`) between the first `old_size` leaves and all of
/// `leaves`, which [`verify_consistency`] accepts. Empty when `old_size` is 0 or `leaves.len()`.
///
/// # Panics
///
/// If `old_size > leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Vec<Hash> {
    roots_of(
        leaves,
        consistency_ranges(old_size as u64, leaves.len() as u64),
    )
}

fn roots_of(leaves: &[Hash], ranges: Vec<Range<u64>>) -> Vec<Hash> {
    ranges
        .into_iter()
        .map(|r| root(&leaves[r.start as usize..r.end as usize]))
        .collect()
}

/// Checks that `leaf` is the leaf hash at `index` in the tree of `tree_size` leaves whose root is
/// `root` (RFC 9162 §2.1.3.2). False for any malformed input.
///
/// Only the hashes are bound by the proof, not `tree_size` itself: a proof also verifies under
/// another size when the path has the same shape there (leaf 0 of 5 and of 6 leaves, say). The
/// size is bound by the signed checkpoint that carries the root.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    if index >= tree_size {
        return false;
    }
    let mut f = index;
    let mut s = tree_size - 1;
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of `old_size`
/// leaves with root `old_root` (RFC 9162 §2.1.4.2). False for any malformed input.
///
/// Sizes the RFC algorithm leaves out: equal sizes need an empty proof and equal roots; an old
/// size of 0 needs an empty proof and `old_root == empty_root()`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == 0 {
        return proof.is_empty() && *old_root == empty_root();
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    // From here 0 < old_size < new_size, and the RFC algorithm applies.
    if proof.is_empty() {
        return false;
    }
    // When the old tree is perfect, its root is the first hash of the path and the proof leaves
    // it out.
    let (first, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    let mut f = old_size - 1;
    let mut s = new_size - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *old_root && sr == *new_root
}

/// The right edge of an append-only Merkle tree: the roots of its perfect subtrees, largest
/// (leftmost) first, one for each set bit of the size, like a binary counter. That is all it takes
/// to append a leaf and to compute the root, in O(log n) hashes and memory.
///
/// Serialized as `{"size": n, "nodes": ["<64 lowercase hex digits>", ...]}`, so the server can
/// persist it and resume after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    ///
    /// # Panics
    ///
    /// If the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) {
        self.push_closing(leaf, |_, _| {});
    }

    /// Appends a leaf hash and tells `closed` of each perfect subtree the leaf completes (above
    /// the leaf itself, smallest first), with its hash: a store keeps the large ones for proofs.
    ///
    /// # Panics
    ///
    /// If the tree already holds `u64::MAX` leaves.
    pub fn push_closing(&mut self, leaf: Hash, mut closed: impl FnMut(Subtree, &Hash)) {
        let new_size = self.size.checked_add(1).expect("Merkle tree size overflow");
        let mut hash = leaf;
        let mut bits = self.size;
        let mut level = 0u8;
        while bits & 1 == 1 {
            let left = self.nodes.pop().expect("one node per set bit of the size");
            hash = node_hash(&left, &hash);
            bits >>= 1;
            level += 1;
            let index = (new_size >> level) - 1;
            closed(Subtree { level, index }, &hash);
        }
        self.nodes.push(hash);
        self.size = new_size;
    }

    /// The Merkle Tree Hash of all leaves appended so far, equal to [`root`] over them.
    pub fn root(&self) -> Hash {
        fold(&self.nodes)
    }
}

#[derive(Serialize, Deserialize)]
struct FrontierRepr {
    size: u64,
    nodes: Vec<String>,
}

impl Serialize for Frontier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FrontierRepr {
            size: self.size,
            nodes: self.nodes.iter().map(to_hex).collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Frontier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let repr = FrontierRepr::deserialize(deserializer)?;
        if repr.nodes.len() != repr.size.count_ones() as usize {
            return Err(D::Error::custom(format!(
                "a Merkle frontier of size {} has {} nodes, not {}",
                repr.size,
                repr.size.count_ones(),
                repr.nodes.len()
            )));
        }
        let nodes = repr
            .nodes
            .iter()
            .map(|s| {
                from_hex(s)
                    .ok_or_else(|| D::Error::custom(format!("not a SHA-256 hash in hex: {s:?}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Frontier {
            size: repr.size,
            nodes,
        })
    }
}

/// A hash as 64 lowercase hex digits.
pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Parses 64 hex digits (either case) into a hash.
pub fn from_hex(s: &str) -> Option<Hash> {
    Hash::from_hex(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize, seed: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {seed}/{i}").as_bytes()))
            .collect()
    }

    fn flip(hash: &Hash, bit: usize) -> Hash {
        let mut h = *hash;
        h[(bit / 8) % 32] ^= 1 << (bit % 8);
        h
    }

    /// Which side each sibling of leaf `m` is on, leaf first, from the recursive definition of
    /// `PATH` (true = the sibling is on the left). Two (index, size) pairs with the same shape
    /// hash a proof identically.
    fn shape(m: u64, n: u64) -> Vec<bool> {
        if n <= 1 {
            return Vec::new();
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        let (mut s, left) = if m < k {
            (shape(m, k), false)
        } else {
            (shape(m - k, n - k), true)
        };
        s.push(left);
        s
    }

    #[test]
    fn empty_tree() {
        let expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(to_hex(&empty_root()), expected);
        assert_eq!(root(&[]), empty_root());
        assert_eq!(Frontier::new().root(), empty_root());
        assert_eq!(Frontier::new().size(), 0);
    }

    #[test]
    fn one_leaf() {
        // SHA-256 of the single byte 0x00: the leaf hash of empty data.
        assert_eq!(
            to_hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let leaf = leaf_hash(b"hello");
        assert_eq!(root(&[leaf]), leaf);
        assert!(inclusion_proof(&[leaf], 0).is_empty());
        assert!(verify_inclusion(&leaf, 0, 1, &[], &leaf));
        assert!(!verify_inclusion(&leaf, 0, 1, &[leaf], &leaf));
        let mut f = Frontier::new();
        f.push(leaf);
        assert_eq!((f.size(), f.root()), (1, leaf));
    }

    #[test]
    fn domain_separation() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut concatenated = vec![0x01];
        concatenated.extend_from_slice(&a);
        concatenated.extend_from_slice(&b);
        let plain: Hash = Sha256::digest(&concatenated).into();
        assert_eq!(node_hash(&a, &b), plain);
        assert_ne!(leaf_hash(&concatenated[1..]), node_hash(&a, &b));
    }

    /// The seven-leaf tree of RFC 6962 §2.1.3, every hash written out by hand:
    ///
    /// ```text
    ///             hash
    ///            /    \
    ///           k      l
    ///          / \    / \
    ///         g   h  i   j
    ///        / \ / \ / \ |
    ///        a b c d e f d6
    /// ```
    #[test]
    fn rfc6962_seven_leaf_tree() {
        let d: Vec<Hash> = (0..7).map(|i| leaf_hash(&[b'd', i])).collect();
        let [a, b, c, dd, e, f, j] = [d[0], d[1], d[2], d[3], d[4], d[5], d[6]];
        let g = node_hash(&a, &b);
        let h = node_hash(&c, &dd);
        let i = node_hash(&e, &f);
        let k = node_hash(&g, &h);
        let l = node_hash(&i, &j);
        let hash = node_hash(&k, &l);

        assert_eq!(root(&d), hash);
        let mut frontier = Frontier::new();
        for leaf in &d {
            frontier.push(*leaf);
        }
        assert_eq!(frontier.root(), hash);
        assert_eq!(frontier.nodes, vec![k, i, j]);

        // Inclusion proofs from §2.1.3.
        let expected = [
            (0, vec![b, h, l]),
            (1, vec![a, h, l]),
            (2, vec![dd, g, l]),
            (3, vec![c, g, l]),
            (4, vec![f, j, k]),
            (5, vec![e, j, k]),
            (6, vec![i, k]),
        ];
        for (index, proof) in expected {
            assert_eq!(inclusion_proof(&d, index), proof, "leaf {index}");
            assert!(verify_inclusion(&d[index], index as u64, 7, &proof, &hash));
        }

        // Consistency proofs from §2.1.3, with the roots of the older trees by hand.
        let hash0 = node_hash(&g, &c);
        let hash1 = k;
        let hash2 = node_hash(&k, &i);
        assert_eq!(root(&d[..3]), hash0);
        assert_eq!(root(&d[..4]), hash1);
        assert_eq!(root(&d[..6]), hash2);
        for (old_size, old_root, proof) in [
            (3, hash0, vec![c, dd, g, l]),
            (4, hash1, vec![l]),
            (6, hash2, vec![i, j, k]),
        ] {
            assert_eq!(consistency_proof(&d, old_size), proof, "size {old_size}");
            assert!(verify_consistency(
                old_size as u64,
                7,
                &old_root,
                &hash,
                &proof
            ));
        }
        assert_eq!(consistency_proof(&d, 1), vec![b, h, l]);
        assert_eq!(consistency_proof(&d, 2), vec![h, l]);
        // SUBPROOF(5, D[0:7]) = SUBPROOF(1, D[4:7], false) + [k]
        //                    = SUBPROOF(1, D[4:6], false) + [j] + [k] = [e] + [f] + [j] + [k].
        let proof5 = vec![e, f, j, k];
        assert_eq!(consistency_proof(&d, 5), proof5);
        assert!(verify_consistency(5, 7, &node_hash(&k, &e), &hash, &proof5));
        assert!(consistency_proof(&d, 0).is_empty());
        assert!(consistency_proof(&d, 7).is_empty());
    }

    #[test]
    fn malformed_inputs_are_rejected() {
        let d = leaves(7, 0);
        let r = root(&d);
        let p = inclusion_proof(&d, 2);
        assert!(verify_inclusion(&d[2], 2, 7, &p, &r));
        assert!(!verify_inclusion(&d[2], 7, 7, &p, &r));
        assert!(!verify_inclusion(&d[2], 2, 0, &p, &r));
        assert!(!verify_inclusion(&d[2], u64::MAX, u64::MAX, &p, &r));
        assert!(!verify_inclusion(&d[2], 2, u64::MAX, &p, &r));
        assert!(!verify_inclusion(&d[2], 2, 7, &p[..2], &r));
        assert!(!verify_inclusion(
            &d[2],
            2,
            7,
            &[p.clone(), vec![r]].concat(),
            &r
        ));
        assert!(!verify_inclusion(&d[2], 2, 7, &[], &r));

        let old = root(&d[..3]);
        let c = consistency_proof(&d, 3);
        assert!(verify_consistency(3, 7, &old, &r, &c));
        assert!(!verify_consistency(7, 3, &r, &old, &c));
        assert!(!verify_consistency(3, 7, &old, &r, &c[..3]));
        assert!(!verify_consistency(
            3,
            7,
            &old,
            &r,
            &[c.clone(), vec![r]].concat()
        ));
        assert!(!verify_consistency(3, 7, &old, &r, &[]));
        assert!(!verify_consistency(3, u64::MAX, &old, &r, &c));
        assert!(!verify_consistency(u64::MAX, u64::MAX, &old, &r, &c));
        assert!(!verify_consistency(4, 7, &root(&d[..4]), &r, &[]));
        assert!(!verify_consistency(0, 0, &r, &r, &[]));

        // The edges outside the RFC algorithm.
        assert!(verify_consistency(0, 7, &empty_root(), &r, &[]));
        assert!(!verify_consistency(0, 7, &empty_root(), &r, &c));
        assert!(!verify_consistency(0, 7, &old, &r, &[]));
        assert!(verify_consistency(0, 0, &empty_root(), &empty_root(), &[]));
        assert!(verify_consistency(7, 7, &r, &r, &[]));
        assert!(!verify_consistency(7, 7, &r, &old, &[]));
        assert!(!verify_consistency(7, 7, &r, &r, &[r]));
    }

    #[test]
    #[should_panic(expected = "not below the tree size")]
    fn inclusion_proof_of_a_missing_leaf_panics() {
        inclusion_proof(&leaves(3, 0), 3);
    }

    #[test]
    #[should_panic(expected = "above the tree size")]
    fn consistency_proof_with_a_larger_old_size_panics() {
        consistency_proof(&leaves(3, 0), 4);
    }

    #[test]
    fn hex_round_trip() {
        let h = leaf_hash(b"x");
        let s = to_hex(&h);
        assert_eq!(s.len(), 64);
        assert!(
            s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_eq!(from_hex(&s), Some(h));
        assert_eq!(from_hex(&s.to_uppercase()), Some(h));
        assert_eq!(from_hex(&s[..62]), None);
        assert_eq!(from_hex(&format!("{s}00")), None);
        assert_eq!(from_hex(&format!("{}zz", &s[..62])), None);
        assert_eq!(from_hex(&format!("{}é", &s[..62])), None);
        assert_eq!(from_hex(""), None);
    }

    #[test]
    fn frontier_serde_round_trip_and_resume() {
        let d = leaves(11, 3);
        let mut f = Frontier::new();
        for leaf in &d[..6] {
            f.push(*leaf);
        }
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["size"], 6);
        assert_eq!(
            json["nodes"],
            serde_json::json!([to_hex(&root(&d[..4])), to_hex(&root(&d[4..6]))])
        );
        let mut back: Frontier = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
        for leaf in &d[6..] {
            back.push(*leaf);
        }
        assert_eq!(back.size(), 11);
        assert_eq!(back.root(), root(&d));

        let empty: Frontier = serde_json::from_str(r#"{"size":0,"nodes":[]}"#).unwrap();
        assert_eq!(empty, Frontier::new());
    }

    #[test]
    fn frontier_rejects_inconsistent_json() {
        let h = to_hex(&leaf_hash(b"x"));
        for bad in [
            format!(r#"{{"size":3,"nodes":["{h}"]}}"#),
            format!(r#"{{"size":0,"nodes":["{h}"]}}"#),
            r#"{"size":1,"nodes":[]}"#.to_string(),
            r#"{"size":1,"nodes":["abc"]}"#.to_string(),
            format!(r#"{{"size":-1,"nodes":["{h}"]}}"#),
            format!(r#"{{"nodes":["{h}"]}}"#),
        ] {
            assert!(serde_json::from_str::<Frontier>(&bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn frontier_root_matches_root(n in 1usize..=200, seed in any::<u64>()) {
            let d = leaves(n, seed);
            let mut f = Frontier::new();
            for (i, leaf) in d.iter().enumerate() {
                f.push(*leaf);
                prop_assert_eq!(f.size(), i as u64 + 1);
                prop_assert_eq!(f.nodes.len(), f.size().count_ones() as usize);
            }
            prop_assert_eq!(f.root(), root(&d));
        }

        #[test]
        fn inclusion_proofs_verify_and_bind(n in 1usize..=200, seed in any::<u64>(), bit in 0usize..256) {
            let d = leaves(n, seed);
            let r = root(&d);
            let size = n as u64;
            for (i, leaf) in d.iter().enumerate() {
                let index = i as u64;
                let proof = inclusion_proof(&d, i);
                prop_assert_eq!(proof.len(), shape(index, size).len());
                prop_assert!(verify_inclusion(leaf, index, size, &proof, &r));

                // A flipped bit anywhere: the leaf, any proof hash, the root.
                prop_assert!(!verify_inclusion(&flip(leaf, bit), index, size, &proof, &r));
                prop_assert!(!verify_inclusion(leaf, index, size, &proof, &flip(&r, bit)));
                for j in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[j] = flip(&bad[j], bit);
                    prop_assert!(!verify_inclusion(leaf, index, size, &bad, &r));
                }

                // Another index: each position has its own shape, so the hashes come out different.
                for other in [index + 1, index ^ 1, index.wrapping_sub(1), size - 1 - index, u64::MAX] {
                    if other != index {
                        prop_assert!(!verify_inclusion(leaf, other, size, &proof, &r));
                    }
                }

                // Another size: fails unless the path has exactly the same shape there.
                prop_assert!(!verify_inclusion(leaf, index, index, &proof, &r));
                prop_assert!(!verify_inclusion(leaf, index, u64::MAX, &proof, &r));
                for other in [index + 1, size - 1, size + 1, 2 * size, size + 1 + (seed % 64)] {
                    if other != size && other > index {
                        let same_shape = shape(index, other) == shape(index, size);
                        prop_assert_eq!(verify_inclusion(leaf, index, other, &proof, &r), same_shape);
                    }
                }
            }
        }

        /// Every perfect subtree of level 1 and up is reported exactly once, as the leaf that
        /// completes it is pushed, with the hash of its leaves; and every range a proof names
        /// folds from its subtrees to the same hash as from its leaves.
        #[test]
        fn stored_subtrees_rebuild_every_proof(n in 1usize..=300, seed in any::<u64>()) {
            let d = leaves(n, seed);
            let mut closed = std::collections::HashMap::new();
            let mut f = Frontier::new();
            for leaf in &d {
                let size_before = f.size();
                f.push_closing(*leaf, |t, h| {
                    assert_eq!(t.leaves().end, size_before + 1, "{t:?} closes with this leaf");
                    assert!(closed.insert(t, *h).is_none(), "{t:?} reported twice");
                });
            }
            prop_assert_eq!(closed.len() as u64, n as u64 - (n as u64).count_ones() as u64);
            for (t, h) in &closed {
                let r = t.leaves();
                prop_assert_eq!(*h, root(&d[r.start as usize..r.end as usize]));
            }
            let hash_of = |t: &Subtree| match t.level {
                0 => d[t.index as usize],
                _ => closed[t],
            };
            let size = n as u64;
            let mut ranges: Vec<Range<u64>> = (0..size).flat_map(|i| inclusion_ranges(i, size)).collect();
            ranges.extend((0..=size).flat_map(|m| consistency_ranges(m, size)));
            for r in ranges {
                let parts: Vec<Hash> = subtrees(r.clone()).iter().map(hash_of).collect();
                prop_assert_eq!(fold(&parts), root(&d[r.start as usize..r.end as usize]), "{:?}", r);
            }
        }

        #[test]
        fn consistency_proofs_verify_and_bind(n in 1usize..=200, seed in any::<u64>(), bit in 0usize..256) {
            let d = leaves(n, seed);
            let new_root = root(&d);
            let new_size = n as u64;
            let mut frontier = Frontier::new();
            for old_size in 1..=n {
                frontier.push(d[old_size - 1]);
                let old_root = frontier.root();
                prop_assert_eq!(old_root, root(&d[..old_size]));
                let old = old_size as u64;
                let proof = consistency_proof(&d, old_size);
                prop_assert_eq!(proof.is_empty(), old_size == n);
                prop_assert!(verify_consistency(old, new_size, &old_root, &new_root, &proof));

                prop_assert!(!verify_consistency(old, new_size, &flip(&old_root, bit), &new_root, &proof));
                prop_assert!(!verify_consistency(old, new_size, &old_root, &flip(&new_root, bit), &proof));
                for j in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[j] = flip(&bad[j], bit);
                    prop_assert!(!verify_consistency(old, new_size, &old_root, &new_root, &bad));
                }
                if !proof.is_empty() {
                    prop_assert!(!verify_consistency(old, new_size, &old_root, &new_root, &proof[1..]));
                    prop_assert!(!verify_consistency(old, new_size, &old_root, &new_root, &proof[..proof.len() - 1]));
                }
                prop_assert!(!verify_consistency(new_size, old, &new_root, &old_root, &proof) || old == new_size);
            }
        }
    }
}
