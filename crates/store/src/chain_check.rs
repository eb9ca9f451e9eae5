//! Verification of an organization's hash chain, shared by every backend, without I/O: a
//! [`Verification`] says which rows it wants next ([`Want`]), the backend reads them and hands
//! them over, until the report is done. What is read when, what counts as changed, missing,
//! reordered or badly signed is decided here, once, so both backends name the same problem at
//! the same `seq`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use stele_core::chain::{self, Personal};
use stele_core::checkpoint::{PublicKey, SignedCheckpoint};
use stele_core::merkle::{self, Frontier, Hash, Subtree};
use stele_core::seal::{self, Seal};
use stele_core::time::Millis;
use stele_core::{Entry, Seq};

use crate::proofs::is_stored;
use crate::{IntegrityProblem, ProblemKind, VerifiedPoint, VerifyReport};

/// How many entries (and as many pruned links) one read of a verification brings.
const BATCH: usize = 10_000;

/// How far ahead a verification reads (with [`ChainVerifier::diagnose`]) to tell a reordering
/// from a change.
const REORDER_WINDOW: usize = 1000;

/// One stored entry as the chain sees it.
#[derive(Debug, Clone)]
pub struct ChainRow {
    pub seq: Seq,
    pub id: String,
    pub recorded_at: Millis,
    pub event_digest: Hash,
    /// Whether the stored personal fields still match their digest, or, once erased, are exactly
    /// the pseudonym that the recorded erasure of this entry introduced.
    pub personal_intact: bool,
    pub hash: Hash,
    /// This entry's hash and Merkle leaf computed ahead on the assumption that the chain's
    /// previous hash is the one held here (see [`prelink`]); `None` until then.
    pub prelinked: Option<Prelinked>,
}

/// An entry's link in the chain worked out ahead of the verification that follows the chain.
#[derive(Debug, Clone)]
pub struct Prelinked {
    /// The previous entry's hash this was computed from.
    pub prev: Hash,
    /// `chain::entry_hash` of the entry after `prev`.
    pub hash: Hash,
    /// `merkle::leaf_hash` of that hash.
    pub leaf: Hash,
}

/// Computes ahead, for each row that follows another of `rows` by one `seq`, the hash it has if
/// that other row's stored hash is the chain's previous hash, and its Merkle leaf.
///
/// The verification still follows the chain in order, and takes a prelinked hash only when the
/// previous hash it has recomputed is the one assumed (the same inputs give the same hash), so
/// what it finds is unchanged; what changes is where the hashing runs: in the threads that read
/// and check the rows side by side (the two halves of a piece on SQLite) instead of the one that
/// follows the chain.
pub fn prelink(org_id: &str, rows: &mut [ChainRow]) {
    for i in 1..rows.len() {
        let (before, after) = rows.split_at_mut(i);
        let (prev_row, row) = (&before[i - 1], &mut after[0]);
        if prev_row.seq.next() != row.seq {
            continue;
        }
        let hash = chain::entry_hash(
            &prev_row.hash,
            org_id,
            row.seq,
            &row.id,
            row.recorded_at,
            &row.event_digest,
        );
        row.prelinked = Some(Prelinked {
            prev: prev_row.hash,
            hash,
            leaf: merkle::leaf_hash(&hash),
        });
    }
}

impl ChainRow {
    /// Builds the row from a decoded entry and the chain columns stored beside it.
    pub fn new(
        entry: &Entry,
        seal: &Seal,
        personal_digest: Hash,
        erased: bool,
        hash: Hash,
        vouchers: &Vouchers,
    ) -> ChainRow {
        let checked = seal::check(&entry.event, &personal_digest, seal);
        let personal_intact = match seal {
            // A format-1 entry erased before format 2: nothing but the pseudonym its erasure
            // recorded may be left of the personal fields.
            Seal::V1(None) => {
                let personal = Personal::of(&entry.event);
                let only_pseudonym = Personal {
                    actor_id: personal.actor_id.clone(),
                    ..Personal::default()
                };
                erased
                    && personal == only_pseudonym
                    && personal.actor_id.as_ref() == vouchers.pseudonyms.get(&entry.seq)
            }
            // Values were removed or rewritten: a chained erasure or redaction must name it.
            seal if seal.rewritten() => {
                erased && checked.values_match && vouchers.rewritten.contains(&entry.seq)
            }
            _ => checked.values_match,
        };
        ChainRow {
            seq: entry.seq,
            id: entry.id.clone(),
            recorded_at: entry.recorded_at,
            event_digest: checked.event_digest,
            personal_intact,
            hash,
            prelinked: None,
        }
    }
}

/// What the organization's recorded erasures and redactions vouch for: the entries they
/// rewrote, and the pseudonym each format-1 erasure left (read from the entries whose detailed
/// action is [`chain::ERASURE_DETAILED_ACTION`] or [`chain::REDACTION_DETAILED_ACTION`]). Those
/// records are chained like any entry and clients cannot use those detailed actions, so a
/// rewritten entry that no record names was tampered with.
#[derive(Debug, Default)]
pub struct Vouchers {
    pub pseudonyms: HashMap<Seq, String>,
    pub rewritten: HashSet<Seq>,
}

/// The [`Vouchers`] of an organization's erasure and redaction records.
pub fn vouchers<'a>(records: impl IntoIterator<Item = &'a Entry>) -> Vouchers {
    let mut out = Vouchers::default();
    for entry in records {
        let e = &entry.event;
        let Some(detailed) = e.detailed_action.as_deref() else {
            continue;
        };
        if detailed != chain::ERASURE_DETAILED_ACTION
            && detailed != chain::REDACTION_DETAILED_ACTION
        {
            continue;
        }
        let pseudonym = match e.metadata.get("pseudonym") {
            Some(Value::String(p)) if detailed == chain::ERASURE_DETAILED_ACTION => Some(p),
            _ => None,
        };
        for seq in e.entity_ids.iter().filter_map(|s| s.parse::<Seq>().ok()) {
            out.rewritten.insert(seq);
            if let Some(p) = pseudonym {
                out.pseudonyms.insert(seq, p.clone());
            }
        }
    }
    out
}

/// What a [`Verification`] needs next.
#[derive(Debug)]
pub enum Want {
    /// The stored entries and the pruned links (`seq` and hash) from `seq` `from` on, in `seq`
    /// order, at most `limit` of each: for [`Verification::rows`].
    Rows { from: Seq, limit: usize },
    /// The stored entries from `seq` `from` on, in `seq` order, at most `limit`: for
    /// [`Verification::ahead`], to tell a reordering from a change.
    Ahead { from: Seq, limit: usize },
    /// The stored values of these Merkle subtrees (`crate::proofs`), as stored and `None` for
    /// one not stored, in this order: for [`Verification::subtrees`]. Proofs are built from them, so they are
    /// checked against the chain recomputed so far.
    Subtrees(Vec<Subtree>),
    /// The verification is over.
    Done(VerifyReport),
}

/// The verification of one organization's chain. Start with [`Verification::start`], then give
/// each [`Want`] what it asks for, until [`Want::Done`].
pub struct Verification {
    verifier: ChainVerifier,
    /// The `seq` the organization's chain was recorded up to (`None` without a record).
    recorded_up_to: Option<Seq>,
    /// The row that broke the chain, while the rows after it are read.
    broken: Option<ChainRow>,
}

impl Verification {
    /// `checkpoints` in any order, checked with `key` when given.
    pub fn new(
        org_id: &str,
        checkpoints: Vec<SignedCheckpoint>,
        key: Option<PublicKey>,
        recorded_up_to: Option<Seq>,
    ) -> Verification {
        Verification {
            verifier: ChainVerifier::new(org_id, checkpoints, key),
            recorded_up_to,
            broken: None,
        }
    }

    /// A verification of what came after a checkpoint an earlier verification passed (`since`,
    /// from [`VerifyReport::verified_through`]): the chain goes on from that checkpoint's
    /// `chain_head` and the tree from `since.frontier`, and only later checkpoints are checked.
    /// Nothing of the earlier state is trusted but the checkpoint's signature: the checkpoint
    /// must verify with `key`, and the frontier must be of its size and fold to its
    /// `merkle_root` (forging one would take a second preimage of SHA-256). Otherwise, or without
    /// a key, the verification starts from the beginning, as [`Verification::new`].
    pub fn resume(
        org_id: &str,
        checkpoints: Vec<SignedCheckpoint>,
        key: Option<PublicKey>,
        recorded_up_to: Option<Seq>,
        since: VerifiedPoint,
    ) -> Verification {
        let start = checkpoints.iter().find(|c| {
            c.checkpoint.seq == since.checkpoint_seq
                && c.checkpoint.org_id == org_id
                && key.as_ref().is_some_and(|k| c.verify(k).is_ok())
                && since.frontier.size() == c.checkpoint.seq.tree_size()
                && since.frontier.root() == c.checkpoint.merkle_root
        });
        let Some(start) = start.cloned() else {
            return Verification::new(org_id, checkpoints, key, recorded_up_to);
        };
        let later = checkpoints
            .into_iter()
            .filter(|c| c.checkpoint.seq > start.checkpoint.seq)
            .collect();
        let mut verifier = ChainVerifier::new(org_id, later, key);
        verifier.prev = start.checkpoint.chain_head;
        verifier.frontier = since.frontier.clone();
        verifier.expected = start.checkpoint.seq.next();
        verifier.resumed = true;
        verifier.last_point = Some(since);
        verifier.report.since_checkpoint_seq = Some(start.checkpoint.seq);
        Verification {
            verifier,
            recorded_up_to,
            broken: None,
        }
    }

    /// The first read.
    pub fn start(&self) -> Want {
        self.next_rows()
    }

    fn next_rows(&self) -> Want {
        Want::Rows {
            from: self.verifier.expected_seq(),
            limit: BATCH,
        }
    }

    /// After [`Want::Rows`]: the entries and the pruned links it asked for.
    pub fn rows(&mut self, entries: Vec<ChainRow>, pruned: Vec<(Seq, Hash)>) -> Want {
        let batch = merge_links(entries, pruned, BATCH);
        if batch.is_empty() {
            return Want::Done(self.verifier.finish(self.recorded_up_to));
        }
        for link in batch {
            let row = match link {
                Link::Pruned { seq, hash } => match self.verifier.push_pruned(seq, hash) {
                    Step::Failed => return Want::Done(self.verifier.report()),
                    _ => continue,
                },
                Link::Entry(row) => row,
            };
            match self.verifier.push(&row) {
                Step::Ok => {}
                Step::Failed => return Want::Done(self.verifier.report()),
                Step::Broken => {
                    let from = row.seq.next();
                    self.broken = Some(row);
                    return Want::Ahead {
                        from,
                        limit: REORDER_WINDOW,
                    };
                }
            }
        }
        self.check_closed_subtrees()
    }

    /// The subtrees the last rows closed, if any, else the next rows.
    fn check_closed_subtrees(&mut self) -> Want {
        if self.verifier.closed.is_empty() {
            return self.next_rows();
        }
        Want::Subtrees(self.verifier.closed.iter().map(|(t, _)| *t).collect())
    }

    /// After [`Want::Subtrees`]: their stored hashes as stored (a value of the wrong length is
    /// reported like a wrong hash).
    pub fn subtrees(&mut self, stored: Vec<Option<Vec<u8>>>) -> Want {
        let closed = std::mem::take(&mut self.verifier.closed);
        for ((subtree, computed), stored) in closed.iter().zip(stored) {
            if stored.as_deref() != Some(&computed[..]) {
                let leaves = subtree.leaves();
                let last = Seq::new(leaves.end as i64);
                let message = format!(
                    "the stored Merkle subtree of entries {} to {last} {} the chain: proofs \
                     through it would not verify",
                    leaves.start + 1,
                    if stored.is_some() {
                        "disagrees with"
                    } else {
                        "is missing from"
                    },
                );
                self.verifier
                    .fail(last, ProblemKind::SubtreeMismatch, message);
                return Want::Done(self.verifier.report());
            }
        }
        self.next_rows()
    }

    /// After [`Want::Ahead`]: the entries it asked for.
    pub fn ahead(&mut self, ahead: Vec<ChainRow>) -> Want {
        let row = self
            .broken
            .take()
            .expect("Verification::ahead answers a Want::Ahead");
        Want::Done(self.verifier.diagnose(&row, &ahead))
    }
}

/// One place in the chain as a backend reads it: a stored entry, or the `seq` and hash that a
/// pruned entry left behind.
enum Link {
    Entry(ChainRow),
    Pruned { seq: Seq, hash: Hash },
}

impl Link {
    fn seq(&self) -> Seq {
        match self {
            Link::Entry(row) => row.seq,
            Link::Pruned { seq, .. } => *seq,
        }
    }
}

/// Merges one read of entries and one read of pruned links, both from the same `seq` and each
/// of at most `limit` rows, into `seq` order. A read that came back full may have more beyond
/// its last row, so the run stops there; the rest comes with the next read.
fn merge_links(entries: Vec<ChainRow>, pruned: Vec<(Seq, Hash)>, limit: usize) -> Vec<Link> {
    let bound = [
        (entries.len() >= limit).then(|| entries.last().map(|r| r.seq)),
        (pruned.len() >= limit).then(|| pruned.last().map(|p| p.0)),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .min()
    .unwrap_or(Seq::new(i64::MAX));
    let mut links: Vec<Link> = entries
        .into_iter()
        .map(Link::Entry)
        .chain(
            pruned
                .into_iter()
                .map(|(seq, hash)| Link::Pruned { seq, hash }),
        )
        .filter(|l| l.seq() <= bound)
        .collect();
    links.sort_by_key(Link::seq);
    links
}

/// What [`ChainVerifier::push`] found.
enum Step {
    /// The row extends the chain; keep feeding.
    Ok,
    /// The chain is broken at this row: read the rows after it (up to [`REORDER_WINDOW`]) and
    /// call [`ChainVerifier::diagnose`].
    Broken,
    /// Verification is over: the report names the problem.
    Failed,
}

/// Recomputes a chain from rows fed in `seq` order, checking each checkpoint as its `seq` passes.
struct ChainVerifier {
    org_id: String,
    key: Option<PublicKey>,
    checkpoints: Vec<SignedCheckpoint>,
    next_checkpoint: usize,
    prev: Hash,
    frontier: Frontier,
    /// Subtrees of the stored levels closed by the rows pushed since they were last checked.
    closed: Vec<(Subtree, Hash)>,
    /// The latest checkpoint whose signature (with `key`) and content this run has checked.
    last_point: Option<VerifiedPoint>,
    /// Whether the run resumed after a verified checkpoint: no leading pruned run to track.
    resumed: bool,
    expected: Seq,
    /// See [`ChainVerifier::note_anchor`].
    checkpoint_in_pruned_run: Option<Seq>,
    report: VerifyReport,
}

impl ChainVerifier {
    /// `checkpoints` in any order; they are checked in `seq` order.
    fn new(org_id: &str, mut checkpoints: Vec<SignedCheckpoint>, key: Option<PublicKey>) -> Self {
        checkpoints.sort_by_key(|c| c.checkpoint.seq);
        ChainVerifier {
            org_id: org_id.to_string(),
            key,
            checkpoints,
            next_checkpoint: 0,
            prev: chain::genesis(org_id),
            frontier: Frontier::new(),
            closed: Vec::new(),
            last_point: None,
            resumed: false,
            expected: Seq::FIRST,
            checkpoint_in_pruned_run: None,
            report: VerifyReport {
                org_id: org_id.to_string(),
                ok: true,
                entries: 0,
                first_seq: None,
                last_seq: None,
                checkpoints: 0,
                pruned_entries: 0,
                pruned_up_to_seq: None,
                anchor_checkpoint_seq: None,
                since_checkpoint_seq: None,
                problem: None,
                verified_through: None,
            },
        }
    }

    /// The `seq` the next row must have.
    fn expected_seq(&self) -> Seq {
        self.expected
    }

    fn fail(&mut self, seq: Seq, kind: ProblemKind, message: String) -> Step {
        self.report.ok = false;
        self.report.problem = Some(IntegrityProblem { seq, kind, message });
        Step::Failed
    }

    fn hash_at(&self, seq: Seq, row: &ChainRow) -> Hash {
        chain::entry_hash(
            &self.prev,
            &self.org_id,
            seq,
            &row.id,
            row.recorded_at,
            &row.event_digest,
        )
    }

    fn push(&mut self, row: &ChainRow) -> Step {
        let expected = self.expected;
        if row.seq != expected {
            return self.fail(
                expected,
                ProblemKind::Missing,
                format!(
                    "entry {expected} is missing (the next present is {})",
                    row.seq
                ),
            );
        }
        let (hash, leaf) = match &row.prelinked {
            Some(p) if p.prev == self.prev => (p.hash, p.leaf),
            _ => {
                let hash = self.hash_at(expected, row);
                (hash, merkle::leaf_hash(&hash))
            }
        };
        if hash != row.hash || !row.personal_intact {
            return Step::Broken;
        }
        self.prev = hash;
        self.push_leaf_hash(leaf);
        if self.report.entries == 0 && !self.resumed {
            self.end_pruned_run();
        }
        self.report.entries += 1;
        self.report.first_seq.get_or_insert(row.seq);
        self.report.last_seq = Some(row.seq);
        if let Some(problem) = self.check_checkpoints_up_to(row.seq, &hash) {
            return problem;
        }
        self.expected = self.expected.next();
        Step::Ok
    }

    /// A pruned entry's place in the chain: its content is gone, so its hash is taken as stored;
    /// the next entry's hash and every checkpoint from here on vouch for it.
    fn push_pruned(&mut self, seq: Seq, hash: Hash) -> Step {
        let expected = self.expected;
        if seq != expected {
            return self.fail(
                expected,
                ProblemKind::Missing,
                format!("entry {expected} is missing (the next present is {seq})"),
            );
        }
        self.prev = hash;
        self.push_leaf(&hash);
        self.report.pruned_entries += 1;
        if self.report.entries == 0 && !self.resumed {
            self.report.pruned_up_to_seq = Some(seq);
        }
        if let Some(problem) = self.check_checkpoints_up_to(seq, &hash) {
            return problem;
        }
        self.expected = self.expected.next();
        Step::Ok
    }

    fn push_leaf(&mut self, hash: &Hash) {
        self.push_leaf_hash(merkle::leaf_hash(hash));
    }

    fn push_leaf_hash(&mut self, leaf: Hash) {
        let closed = &mut self.closed;
        self.frontier.push_closing(leaf, |t, h| {
            if is_stored(&t) {
                closed.push((t, *h));
            }
        });
    }

    fn check_checkpoints_up_to(&mut self, seq: Seq, head: &Hash) -> Option<Step> {
        // Compared before cloned: this runs for every entry, a checkpoint passes rarely.
        while let Some(cp) = self
            .checkpoints
            .get(self.next_checkpoint)
            .filter(|cp| cp.checkpoint.seq <= seq)
            .cloned()
        {
            self.next_checkpoint += 1;
            if let Some((kind, message)) = self.check_checkpoint(&cp, seq, head) {
                return Some(self.fail(cp.checkpoint.seq, kind, message));
            }
            self.report.checkpoints += 1;
            if self.key.is_some() {
                self.last_point = Some(VerifiedPoint {
                    checkpoint_seq: cp.checkpoint.seq,
                    frontier: self.frontier.clone(),
                });
            }
            self.note_anchor(cp.checkpoint.seq);
        }
        None
    }

    /// The anchor is the first checkpoint at or after the end of the leading pruned run. While
    /// still inside that run its end is unknown, so the latest checkpoint there is kept aside and
    /// becomes the anchor only if the run ends exactly at it.
    fn note_anchor(&mut self, checkpoint_seq: Seq) {
        if self.report.anchor_checkpoint_seq.is_some() {
            return;
        }
        if self.report.entries == 0 {
            self.checkpoint_in_pruned_run = Some(checkpoint_seq);
        } else if self.report.pruned_up_to_seq.is_some() {
            self.report.anchor_checkpoint_seq = Some(checkpoint_seq);
        }
    }

    /// Called when the leading pruned run ends (at the first present entry, or at the end).
    fn end_pruned_run(&mut self) {
        if self.report.anchor_checkpoint_seq.is_none()
            && self.checkpoint_in_pruned_run.is_some()
            && self.checkpoint_in_pruned_run == self.report.pruned_up_to_seq
        {
            self.report.anchor_checkpoint_seq = self.checkpoint_in_pruned_run;
        }
    }

    /// After [`Step::Broken`]: does one of the rows after it belong at this position (a
    /// reordering), or was the row itself changed?
    fn diagnose(&mut self, row: &ChainRow, ahead: &[ChainRow]) -> VerifyReport {
        let expected = self.expected;
        if let Some(other) = ahead.iter().find(|o| self.hash_at(expected, o) == o.hash) {
            self.fail(
                expected,
                ProblemKind::Reordered,
                format!(
                    "entry {expected} is out of order: the entry stored as {} belongs at {expected}",
                    other.seq
                ),
            );
        } else {
            let what = if row.personal_intact {
                "its content no longer matches its hash"
            } else {
                "its personal fields no longer match their digest or a recorded erasure"
            };
            self.fail(
                expected,
                ProblemKind::Changed,
                format!("entry {expected} was changed: {what}"),
            );
        }
        self.report.clone()
    }

    /// The report, once every row was fed: entries missing at the end are caught here, against
    /// the last checkpoint and the `seq` the chain was recorded up to (`recorded_up_to`).
    fn finish(&mut self, recorded_up_to: Option<Seq>) -> VerifyReport {
        if !self.report.ok {
            return self.report.clone();
        }
        if self.report.entries == 0 && !self.resumed {
            self.end_pruned_run();
        }
        let expected = self.expected;
        if let Some(cp) = self.checkpoints.get(self.next_checkpoint) {
            let covered = cp.checkpoint.seq;
            self.fail(
                expected,
                ProblemKind::Missing,
                format!(
                    "entries from {expected} on are missing: a checkpoint covers up to {covered}"
                ),
            );
        } else if let Some(up_to) = recorded_up_to
            && up_to >= expected
        {
            self.fail(
                expected,
                ProblemKind::Missing,
                format!(
                    "entries from {expected} on are missing: the chain was recorded up to {up_to}"
                ),
            );
        }
        if self.report.ok {
            self.report.verified_through = self.last_point.clone();
        }
        self.report.clone()
    }

    /// The report so far (after [`Step::Failed`]).
    fn report(&self) -> VerifyReport {
        self.report.clone()
    }

    fn check_checkpoint(
        &self,
        cp: &SignedCheckpoint,
        at_seq: Seq,
        head: &Hash,
    ) -> Option<(ProblemKind, String)> {
        let seq = cp.checkpoint.seq;
        if let Some(key) = &self.key
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
        if &cp.checkpoint.chain_head != head || cp.checkpoint.merkle_root != self.frontier.root() {
            return Some((
                ProblemKind::CheckpointMismatch,
                format!(
                    "checkpoint at {seq} is signed, but the entries up to {seq} no longer hash to it"
                ),
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed chain of `n` entries (their content stands in as a digest).
    fn chain_of(org_id: &str, n: i64) -> Vec<ChainRow> {
        let mut prev = chain::genesis(org_id);
        (1..=n)
            .map(|seq| {
                let (id, recorded_at, event_digest) =
                    (format!("e{seq}"), 1000 + seq, [seq as u8; 32]);
                let seq = Seq::new(seq);
                let hash = chain::entry_hash(&prev, org_id, seq, &id, recorded_at, &event_digest);
                prev = hash;
                ChainRow {
                    seq,
                    id,
                    recorded_at,
                    event_digest,
                    personal_intact: true,
                    hash,
                    prelinked: None,
                }
            })
            .collect()
    }

    /// Runs a verification of `rows` to its report, answering a read ahead from `rows`.
    fn report_of(org_id: &str, rows: &[ChainRow]) -> VerifyReport {
        let last = rows.last().map(|r| r.seq);
        let mut verification = Verification::new(org_id, vec![], None, last);
        let mut want = verification.rows(rows.to_vec(), vec![]);
        loop {
            want = match want {
                Want::Rows { .. } => verification.rows(vec![], vec![]),
                Want::Ahead { from, .. } => {
                    verification.ahead(rows.iter().filter(|r| r.seq >= from).cloned().collect())
                }
                Want::Subtrees(trees) => verification.subtrees(vec![None; trees.len()]),
                Want::Done(report) => return report,
            }
        }
    }

    #[test]
    fn prelinked_rows_give_the_reports_the_chain_followed_alone_gives() {
        let intact = chain_of("org_a", 20);
        let mut digest_changed = intact.clone();
        digest_changed[7].event_digest = [0xee; 32];
        let mut hash_changed = intact.clone();
        hash_changed[7].hash = [0xee; 32];
        let mut swapped = intact.clone();
        let (a, b) = (swapped[4].clone(), swapped[5].clone());
        swapped[4] = ChainRow { seq: a.seq, ..b };
        swapped[5] = ChainRow {
            seq: Seq::new(6),
            ..a
        };
        let mut one_missing = intact.clone();
        one_missing.remove(12);
        for (name, rows) in [
            ("intact", intact),
            ("digest changed", digest_changed),
            ("stored hash changed", hash_changed),
            ("swapped", swapped),
            ("one missing", one_missing),
        ] {
            let alone = report_of("org_a", &rows);
            let mut prelinked = rows.clone();
            prelink("org_a", &mut prelinked);
            assert!(prelinked[1].prelinked.is_some(), "{name}");
            assert_eq!(report_of("org_a", &prelinked), alone, "{name}");
        }
    }

    #[test]
    fn a_prelinked_hash_from_another_previous_hash_is_not_taken() {
        let mut rows = chain_of("org_a", 5);
        prelink("org_a", &mut rows);
        // Worked out from a previous hash the chain does not have: it must be recomputed.
        rows[3].prelinked = Some(Prelinked {
            prev: [9; 32],
            hash: [0; 32],
            leaf: [0; 32],
        });
        let report = report_of("org_a", &rows);
        assert!(report.ok, "{report:?}");
        // Taken whenever its previous hash is the chain's: a wrong one then shows.
        rows[3].prelinked.as_mut().unwrap().prev = rows[2].hash;
        assert!(!report_of("org_a", &rows).ok);
    }

    #[test]
    fn a_verification_asks_for_rows_until_none_are_left() {
        let mut verification = Verification::new("org_a", vec![], None, Some(Seq::new(3)));
        assert!(matches!(
            verification.start(),
            Want::Rows {
                from,
                limit: BATCH
            } if from == Seq::new(1)
        ));
        let want = verification.rows(chain_of("org_a", 3), vec![]);
        assert!(
            matches!(want, Want::Rows { from, .. } if from == Seq::new(4)),
            "{want:?}"
        );
        let Want::Done(report) = verification.rows(vec![], vec![]) else {
            panic!("no rows left, so the report")
        };
        assert!(report.ok, "{report:?}");
        assert_eq!((report.entries, report.last_seq), (3, Some(Seq::new(3))));
    }

    #[test]
    fn a_broken_row_makes_a_verification_read_ahead_to_tell_a_reordering() {
        let mut rows = chain_of("org_a", 3);
        // The entries of 2 and 3 swapped places, each keeping its `seq`.
        let (second, third) = (rows[1].clone(), rows[2].clone());
        rows[1] = ChainRow {
            seq: Seq::new(2),
            ..third
        };
        rows[2] = ChainRow {
            seq: Seq::new(3),
            ..second
        };
        let mut verification = Verification::new("org_a", vec![], None, Some(Seq::new(3)));
        let want = verification.rows(rows.clone(), vec![]);
        assert!(
            matches!(
                want,
                Want::Ahead {
                    from,
                    limit: REORDER_WINDOW
                } if from == Seq::new(3)
            ),
            "{want:?}"
        );
        let Want::Done(report) = verification.ahead(rows[2..].to_vec()) else {
            panic!("the diagnosis ends the verification")
        };
        let problem = report.problem.expect("a problem");
        assert_eq!(
            (problem.seq, problem.kind),
            (Seq::new(2), ProblemKind::Reordered)
        );
    }
}
