//! Proof documents an auditor can check without the database: an entry's inclusion in a signed
//! checkpoint, and the consistency of two signed checkpoints (the later tree extends the
//! earlier one, so nothing before it was rewritten). The server produces them; `stele proof
//! verify` and any independent implementation check them with the public key alone.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chain;
use crate::checkpoint::{CheckpointError, PublicKey, SignedCheckpoint};
use crate::event::Entry;
use crate::merkle::{self, Hash, from_hex, to_hex};
use crate::seal::{self, Seal};
use crate::seq::Seq;

/// `GET /v1/events/{id}/proof`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The entry as the API shows it.
    pub entry: Value,
    /// The digest standing in for the entry's erasable values: format 2's fields digest, format
    /// 1's personal digest (`crate::seal`).
    pub personal_digest: String,
    /// The entry's seal in hex (`crate::seal::Seal`), so the values shown can be checked too:
    /// `null` only for a format-1 entry erased before format 2.
    #[serde(default)]
    pub personal_salt: Option<String>,
    /// The hash of the entry before it (or the organization's genesis hash for seq 1).
    pub prev_hash: String,
    pub entry_hash: String,
    /// `seq - 1`: the entry's leaf in the Merkle tree.
    pub leaf_index: u64,
    /// The checkpoint's `seq`: the size of the tree the path leads to.
    pub tree_size: u64,
    /// RFC 6962 audit path, leaf to root.
    pub path: Vec<String>,
    pub checkpoint: SignedCheckpoint,
}

/// `GET /v1/integrity/consistency?from=&to=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub from: SignedCheckpoint,
    pub to: SignedCheckpoint,
    /// RFC 6962 consistency proof from `from.seq` leaves to `to.seq` leaves.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    #[error("the entry does not hash to entry_hash: its content or position differs")]
    EntryMismatch,
    #[error(
        "the values shown (actor, context, description, entity, changes, metadata) do not match the entry's digest of them"
    )]
    PersonalMismatch,
    #[error("the audit path does not lead from the entry to the checkpoint's Merkle root")]
    NotIncluded,
    #[error("the two checkpoints belong to different organizations")]
    DifferentOrganizations,
    #[error("the later checkpoint does not extend the earlier one")]
    Inconsistent,
}

fn hashes(list: &[String]) -> Result<Vec<Hash>, ProofError> {
    list.iter()
        .map(|h| from_hex(h).ok_or(ProofError::Malformed("a path element is not 64 hex digits")))
        .collect()
}

fn hash(h: &str, what: &'static str) -> Result<Hash, ProofError> {
    from_hex(h).ok_or(ProofError::Malformed(what))
}

impl InclusionProof {
    /// Checks, in order: the checkpoint's signature; when the salt is given, that the actor and
    /// context shown match the personal digest; that the entry's content, seq, id and recorded
    /// time hash (with `prev_hash` and `personal_digest`) to `entry_hash`; and that
    /// `entry_hash` is leaf `seq - 1` of the tree whose root the checkpoint signs.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ProofError> {
        self.checkpoint.verify(key)?;
        let entry = Entry::from_json(&self.entry).ok_or(ProofError::Malformed(
            "entry is not an entry as the API shows it",
        ))?;
        let cp = &self.checkpoint.checkpoint;
        if entry.seq < Seq::FIRST
            || self.leaf_index != entry.seq.leaf_index()
            || self.tree_size != cp.seq.tree_size()
        {
            return Err(ProofError::Malformed(
                "leaf_index or tree_size disagree with seq",
            ));
        }
        let personal = hash(
            &self.personal_digest,
            "personal_digest is not 64 hex digits",
        )?;
        let prev = hash(&self.prev_hash, "prev_hash is not 64 hex digits")?;
        let claimed = hash(&self.entry_hash, "entry_hash is not 64 hex digits")?;
        if entry.seq == Seq::FIRST && prev != chain::genesis(&cp.org_id) {
            return Err(ProofError::EntryMismatch);
        }
        let seal = Seal::from_hex(self.personal_salt.as_deref())
            .map_err(|_| ProofError::Malformed("personal_salt is not a seal in hex"))?;
        let checked = seal::check(&entry.event, &personal, &seal);
        // Without a salt (a format-1 entry erased before format 2) the personal fields are not
        // proven; every other seal proves the values still shown.
        if !checked.values_match && self.personal_salt.is_some() {
            return Err(ProofError::PersonalMismatch);
        }
        let digest = checked.event_digest;
        let computed = chain::entry_hash(
            &prev,
            &cp.org_id,
            entry.seq,
            &entry.id,
            entry.recorded_at,
            &digest,
        );
        if computed != claimed {
            return Err(ProofError::EntryMismatch);
        }
        let path = hashes(&self.path)?;
        if !merkle::verify_inclusion(
            &merkle::leaf_hash(&computed),
            self.leaf_index,
            self.tree_size,
            &path,
            &cp.merkle_root,
        ) {
            return Err(ProofError::NotIncluded);
        }
        Ok(())
    }
}

impl ConsistencyProof {
    /// Checks both signatures, then that the tree of `to` extends the tree of `from`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ProofError> {
        self.from.verify(key)?;
        self.to.verify(key)?;
        let (a, b) = (&self.from.checkpoint, &self.to.checkpoint);
        if a.org_id != b.org_id {
            return Err(ProofError::DifferentOrganizations);
        }
        if a.seq < Seq::BEFORE_FIRST || a.seq > b.seq {
            return Err(ProofError::Malformed("`from` must not be later than `to`"));
        }
        let path = hashes(&self.path)?;
        if !merkle::verify_consistency(
            a.seq.tree_size(),
            b.seq.tree_size(),
            &a.merkle_root,
            &b.merkle_root,
            &path,
        ) {
            return Err(ProofError::Inconsistent);
        }
        Ok(())
    }
}

/// Hex strings for a proof document.
pub fn hex_list(list: &[Hash]) -> Vec<String> {
    list.iter().map(to_hex).collect()
}
