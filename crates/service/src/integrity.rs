//! Verifying an organization's chain: on demand (`stele verify`, `GET /v1/integrity/verify`),
//! incrementally from where the last verification that passed got to, and continuously in the
//! background of `stele serve` ([`watch`]), which reports a problem in `/readyz`, the log and a
//! metric.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use stele_core::checkpoint::PublicKey;
use stele_core::time::{Millis, now_millis};
use stele_store::{IntegrityProblem, OrgKey, Store, StoreError, VerifyReport};

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
    /// New entries (since the last verified checkpoint) of every organization.
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
/// pass finds that organization's chain whole again. Runs until the task is dropped.
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
