//! Verifying an organization's chain: on demand (`stele verify`, `GET /v1/integrity/verify`),
//! incrementally from where the last verification that passed got to, and continuously in the
//! background of `stele serve` ([`watch`]), which reports a problem in `/readyz`, the log and a
//! metric. And the proofs an auditor checks with the public key alone: an entry's inclusion in a
//! signed checkpoint, two checkpoints' consistency (the API and `stele proof`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use stele_core::checkpoint::PublicKey;
use stele_core::proof::{ConsistencyProof, InclusionProof, hex_list};
use stele_core::time::{Millis, now_millis};
use stele_core::{Seq, chain, merkle};
use stele_store::{IntegrityProblem, OrgKey, Store, StoreError, VerifyReport, proofs};

use crate::low_priority;

/// How much of the chain a verification checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Every entry and checkpoint from the start.
    Full,
    /// What came after the last checkpoint a verification passed (all of it the first time, or
    /// without a key to check signatures with).
    SinceLastVerified,
}

/// Verifies the organization's chain and, when it passes, records how far it got, so the next
/// [`Extent::SinceLastVerified`] verification starts there. Every door calls this.
pub async fn verify(
    store: &dyn Store,
    org: OrgKey,
    key: Option<&PublicKey>,
    extent: Extent,
) -> Result<VerifyReport, StoreError> {
    let since = match (extent, key) {
        (Extent::SinceLastVerified, Some(_)) => store.last_verified(org).await?,
        _ => None,
    };
    let before = since.as_ref().map(|p| p.checkpoint_seq);
    let report = store.verify_since(org, key, since).await?;
    if report.ok
        && let Some(point) = &report.verified_through
        && Some(point.checkpoint_seq) != before
    {
        store.record_verified(org, point).await?;
    }
    let result = if report.ok { "verified" } else { "failed" };
    metrics::counter!(stele_store::metrics::VERIFICATIONS, "result" => result).increment(1);
    Ok(report)
}

/// How often the background verification runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchEvery {
    /// New entries (since the last verified checkpoint) of every organization. Zero turns the
    /// background verification off.
    pub new_entries: Duration,
    /// Every organization's whole chain.
    pub whole_trail: Duration,
}

impl Default for WatchEvery {
    fn default() -> Self {
        WatchEvery {
            new_entries: Duration::from_secs(60),
            whole_trail: Duration::from_secs(24 * 3600),
        }
    }
}

/// What the background verification last found, for `/readyz`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchStatus {
    /// The operator turned it off (`--verify-every 0`).
    #[serde(skip)]
    pub off: bool,
    /// When the last pass over every organization ended.
    pub last_pass_at: Option<Millis>,
    /// When the last pass over every organization's whole chain ended.
    pub last_full_pass_at: Option<Millis>,
    /// The problems of the organizations whose chain failed, by organization id.
    pub problems: Vec<OrgProblem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrgProblem {
    pub org_id: String,
    #[serde(flatten)]
    pub problem: IntegrityProblem,
}

pub type SharedWatchStatus = Arc<Mutex<WatchStatus>>;

/// Verifies every organization's new entries every `every.new_entries`, and every whole chain
/// on the first pass (one interval after start, so that a restart is not slowed down) and every
/// `every.whole_trail` (a tampering before the last verified checkpoint is found there). A
/// problem is logged as an error naming the organization and `seq`, counted in
/// `stele_verifications_total{result="failed"}` and shown in `status` (`/readyz`) until a later
/// pass finds that organization's chain whole again. Runs until the task is dropped; the server
/// runs it through [`spawn_watch`].
pub async fn watch(
    store: Arc<dyn Store>,
    key: PublicKey,
    every: WatchEvery,
    status: SharedWatchStatus,
) {
    let mut last_full: Option<Instant> = None;
    loop {
        tokio::time::sleep(every.new_entries).await;
        let full = last_full.is_none_or(|at| at.elapsed() >= every.whole_trail);
        let extent = if full {
            Extent::Full
        } else {
            Extent::SinceLastVerified
        };
        match pass(store.as_ref(), &key, extent).await {
            Ok(problems) => {
                let now = now_millis();
                let mut s = status.lock().expect("integrity watch status");
                s.last_pass_at = Some(now);
                if full {
                    s.last_full_pass_at = Some(now);
                    last_full = Some(Instant::now());
                }
                s.problems = problems;
            }
            Err(error) => tracing::warn!(%error, "background verification could not run"),
        }
    }
}

/// Starts [`watch`] on a thread of its own at the lowest CPU priority ([`low_priority`]): its
/// passes take what the requests leave of the cores. At full speed, a pass over the minute's new
/// entries on a core of its own took a quarter of a 2-core machine's ingest rate; at the lowest
/// priority a pass under such load takes longer instead. Stops when the returned value is dropped.
pub fn spawn_watch(
    store: Arc<dyn Store>,
    key: PublicKey,
    every: WatchEvery,
    status: SharedWatchStatus,
) -> std::io::Result<low_priority::Stop> {
    low_priority::spawn("stele-verify", watch(store, key, every, status))
}

/// One verification of every organization.
async fn pass(
    store: &dyn Store,
    key: &PublicKey,
    extent: Extent,
) -> Result<Vec<OrgProblem>, StoreError> {
    let mut problems = Vec::new();
    for org in store.list_orgs().await? {
        let report = verify(store, org.key, Some(key), extent).await?;
        if let Some(problem) = report.problem {
            tracing::error!(
                org = %org.id,
                seq = %problem.seq,
                kind = ?problem.kind,
                message = %problem.message,
                "the organization's chain failed verification"
            );
            problems.push(OrgProblem {
                org_id: org.id,
                problem,
            });
        }
    }
    Ok(problems)
}

/// Why a proof cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ProofRefused {
    #[error("no entry with this id in your organization")]
    NoSuchEntry,
    #[error("no signed checkpoint covers this entry yet; one is made at least every minute")]
    NotCoveredYet,
    /// `field` names which of the two checkpoints (`from` or `to`).
    #[error("there is no checkpoint at seq {seq}")]
    NoCheckpointAt { field: &'static str, seq: Seq },
    #[error("`from` must not be greater than `to`")]
    Backwards,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An inclusion proof of the entry `id` in the organization's newest signed checkpoint (RFC
/// 6962), with what an auditor needs to recompute the entry's hash from its content. The path
/// comes from stored subtrees (`stele_store::proofs`): a few reads whatever the trail's size.
pub async fn inclusion_proof(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
) -> Result<InclusionProof, ProofRefused> {
    // Reads that need nothing of each other run side by side (each on a connection of its
    // own): a proof is a handful of short reads, and one after another they added up to most of
    // its time on PostgreSQL at 10M entries (docs/benchmarks.md).
    let (entry, newest) = tokio::try_join!(store.get(org, id), store.checkpoints(org, 1))?;
    let entry = entry.ok_or(ProofRefused::NoSuchEntry)?;
    let checkpoint = newest
        .into_iter()
        .next()
        .filter(|c| c.checkpoint.seq >= entry.seq)
        .ok_or(ProofRefused::NotCoveredYet)?;
    let index = entry.seq.leaf_index();
    let tree_size = checkpoint.checkpoint.seq.tree_size();
    let (personal, found) = tokio::try_join!(
        store.personal_digest(org, entry.seq),
        proofs::inclusion(store, org, index, tree_size)
    )?;
    let (personal, salt) = personal.ok_or(ProofRefused::NoSuchEntry)?;
    let prev = found
        .prev_hash
        .unwrap_or_else(|| chain::genesis(&checkpoint.checkpoint.org_id));
    Ok(InclusionProof {
        entry: entry.to_json(),
        personal_digest: merkle::to_hex(&personal),
        personal_salt: salt.to_hex(),
        prev_hash: merkle::to_hex(&prev),
        entry_hash: merkle::to_hex(&found.entry_hash),
        leaf_index: index,
        tree_size,
        path: hex_list(&found.path),
        checkpoint,
    })
}

/// A consistency proof (RFC 6962) between the organization's signed checkpoints at `from` and
/// `to`.
pub async fn consistency_proof(
    store: &dyn Store,
    org: OrgKey,
    from: Seq,
    to: Seq,
) -> Result<ConsistencyProof, ProofRefused> {
    if from > to {
        return Err(ProofRefused::Backwards);
    }
    let at = |seq: Seq, field: &'static str| async move {
        store
            .checkpoint_at(org, seq)
            .await?
            .ok_or(ProofRefused::NoCheckpointAt { field, seq })
    };
    let (from_cp, to_cp) = (at(from, "from").await?, at(to, "to").await?);
    let path = proofs::consistency_path(store, org, from.tree_size(), to.tree_size()).await?;
    Ok(ConsistencyProof {
        path: hex_list(&path),
        from: from_cp,
        to: to_cp,
    })
}
