//! Integrity: signed checkpoints of each organization's hash chain, what proofs are built from
//! (chain hashes, personal digests), and verification of the whole chain ([`Integrity`], with
//! its report types). How a chain is checked is [`crate::chain_check`]'s.

use std::ops::RangeInclusive;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stele_core::Seq;
use stele_core::checkpoint::{PublicKey, SignedCheckpoint};
use stele_core::merkle::{Frontier, Hash, Subtree};
use stele_core::seal::Seal;

use crate::{OrgKey, Result};

#[async_trait]
pub trait Integrity: Send + Sync {
    /// Signed checkpoints, newest first, at most `limit`.
    async fn checkpoints(&self, org: OrgKey, limit: usize) -> Result<Vec<SignedCheckpoint>>;

    /// The key ids (`SignedCheckpoint::key_id`) that signed each organization's newest
    /// checkpoint, each once, sorted. Empty before the first checkpoint. A server checks it at
    /// startup: servers sharing one database must share one signing key, or `verify` fails.
    async fn checkpoint_key_ids(&self) -> Result<Vec<String>>;

    /// Records `key_id` as the key that signs this database's checkpoints, unless one is recorded
    /// already, and returns the recorded one. A server compares it with its own key at startup:
    /// two servers that start at once on an empty database with different keys both find no
    /// checkpoint, but only one of them can claim the database.
    async fn claim_signing_key(&self, key_id: &str) -> Result<String>;

    /// Signs a checkpoint now for every organization with entries since its last one; returns
    /// how many were made. Without a signing key, none are.
    async fn checkpoint_now(&self) -> Result<usize>;

    /// Called once the server has stopped taking requests: signs the final checkpoints and
    /// leaves the storage tidy for the next start (SQLite folds its write-ahead log away).
    async fn shutdown(&self) -> Result<()>;

    /// The signed checkpoint at exactly this `seq`, if one was made there.
    async fn checkpoint_at(&self, org: OrgKey, seq: Seq) -> Result<Option<SignedCheckpoint>>;

    /// The entry hashes of `seq` 1 to `up_to` in order: the leaves of the Merkle tree.
    async fn chain_hashes(&self, org: OrgKey, up_to: Seq) -> Result<Vec<Hash>> {
        self.entry_hashes(org, Seq::FIRST..=up_to).await
    }

    /// The entry hashes of the `seqs` in order, pruned entries' included (their leaves stay in
    /// the tree). An error when one is missing.
    async fn entry_hashes(&self, org: OrgKey, seqs: RangeInclusive<Seq>) -> Result<Vec<Hash>>;

    /// [`Integrity::entry_hashes`] of several spans, in one read (a proof's few blocks of
    /// leaves).
    async fn entry_hashes_of(
        &self,
        org: OrgKey,
        spans: Vec<RangeInclusive<Seq>>,
    ) -> Result<Vec<Vec<Hash>>>;

    /// The stored hashes of these perfect subtrees of the organization's Merkle tree, in the
    /// order asked. Stores keep every subtree of [`crate::proofs::STORED_LEVEL`] and above as
    /// it closes (the writer appends them with the entries that close them); asking for a
    /// smaller one, or one not closed yet, is an error.
    async fn stored_subtrees(&self, org: OrgKey, subtrees: Vec<Subtree>) -> Result<Vec<Hash>>;

    /// The salted digest standing in for an entry's personal fields, and the salt (gone once the
    /// entry was erased).
    async fn personal_digest(&self, org: OrgKey, seq: Seq) -> Result<Option<(Hash, Seal)>>;

    /// Recomputes the organization's chain from its entries and checks every checkpoint (their
    /// signatures with `key`, when given). Stops at the first problem.
    async fn verify(&self, org: OrgKey, key: Option<&PublicKey>) -> Result<VerifyReport> {
        self.verify_since(org, key, None).await
    }

    /// [`Integrity::verify`] of what came after `since` (a checkpoint an earlier verification
    /// passed, `VerifyReport::verified_through`), or of everything when `since` is `None` or does
    /// not check out (`chain_check::Verification::resume`).
    async fn verify_since(
        &self,
        org: OrgKey,
        key: Option<&PublicKey>,
        since: Option<VerifiedPoint>,
    ) -> Result<VerifyReport>;

    /// Where the organization's chain was last verified to (see `record_verified`), if anywhere.
    async fn last_verified(&self, org: OrgKey) -> Result<Option<VerifiedPoint>>;

    /// Records where a verification that passed got to, so the next one can start there.
    /// Bookkeeping, not part of the record: losing it costs one full verification.
    async fn record_verified(&self, org: OrgKey, point: &VerifiedPoint) -> Result<()>;
}

/// A signed checkpoint a verification passed, and the Merkle frontier at it: where an
/// incremental verification resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedPoint {
    pub checkpoint_seq: Seq,
    pub frontier: Frontier,
}

/// The outcome of recomputing an organization's chain and checking its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub org_id: String,
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    pub first_seq: Option<Seq>,
    pub last_seq: Option<Seq>,
    /// Checkpoints whose signature and content were checked.
    pub checkpoints: u64,
    /// Entries removed by retention: only their place in the chain (`seq` and hash) is left.
    pub pruned_entries: u64,
    /// Every entry up to this `seq` was pruned: the chain's present part starts after it.
    pub pruned_up_to_seq: Option<Seq>,
    /// The first checkpoint at or after `pruned_up_to_seq`: its signature and its agreement with
    /// the entries after the pruned part vouch for the hashes the pruned entries left behind.
    pub anchor_checkpoint_seq: Option<Seq>,
    /// Set when only what came after this checkpoint was verified (it had passed an earlier
    /// verification): the counts and `first_seq` are of this run's part.
    pub since_checkpoint_seq: Option<Seq>,
    /// The first problem, in `seq` order.
    pub problem: Option<IntegrityProblem>,
    /// The last checkpoint this verification passed with a key, where the next can resume.
    #[serde(skip)]
    pub verified_through: Option<VerifiedPoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrityProblem {
    pub seq: Seq,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The entry's content no longer matches its hash.
    Changed,
    /// An entry the chain expects is not there.
    Missing,
    /// The entry belongs at another position in the chain.
    Reordered,
    /// A checkpoint's signature does not verify with the public key.
    BadSignature,
    /// A correctly signed checkpoint disagrees with the recomputed chain.
    CheckpointMismatch,
    /// A stored Merkle subtree, which proofs are built from, disagrees with the recomputed
    /// chain (or is missing): `seq` is the subtree's last entry.
    SubtreeMismatch,
}
