//! Export jobs (`POST /v1/exports`): their state is kept in the store, so that any server sharing
//! the database can answer a poll ([`ExportJobs`], with its types). The file itself lives in the
//! data directory of the server that wrote it; the store only knows about it.

use async_trait::async_trait;
use serde::Serialize;
use stele_core::time::Millis;

use crate::{OrgKey, Result};

#[async_trait]
pub trait ExportJobs: Send + Sync {
    /// Records a new pending job for the organization and returns it with its `exp_…` id.
    async fn create_export_job(&self, org: OrgKey, job: NewExportJob) -> Result<ExportJob>;

    /// The organization's job with this id; another organization's job is `None`.
    async fn export_job(&self, org: OrgKey, id: &str) -> Result<Option<ExportJob>>;

    /// The runner's sign of life for a pending job. False when the job is no longer pending
    /// (a sweep declared it interrupted, say): the runner should stop.
    async fn touch_export_job(&self, id: &str, now: Millis) -> Result<bool>;

    /// Ends a pending job as ready or failed. False when it was no longer pending, and then
    /// nothing changed.
    async fn finish_export_job(&self, id: &str, outcome: ExportJobOutcome) -> Result<bool>;

    /// Records a download link of the job: only the SHA-256 of its token is stored.
    async fn add_export_link(&self, id: &str, token_hash: [u8; 32], now: Millis) -> Result<()>;

    /// The job with this id, if `token_hash` is one of its links (downloads carry no API key).
    async fn export_job_by_link(&self, id: &str, token_hash: [u8; 32])
    -> Result<Option<ExportJob>>;

    /// Expires ready jobs past their window, fails pending jobs whose runner went quiet, and
    /// forgets jobs that ended long ago (see [`ExportSweep`]).
    async fn sweep_export_jobs(&self, sweep: ExportSweep) -> Result<ExportSweepOutcome>;

    /// Ids of every job, of any organization, whose file may still be needed at `now`: pending
    /// jobs, and ready ones within their window. A server removes every other export file.
    async fn live_export_job_ids(&self, now: Millis) -> Result<Vec<String>>;
}

/// Where an export job stands. `Expired` is stored by the sweep once the download window has
/// passed; until then a `Ready` job whose `expires_at` is past is expired all the same
/// ([`ExportJob::state_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportJobState {
    /// Created, running or waiting to run.
    Pending,
    /// The file is written and can be downloaded until `expires_at`.
    Ready,
    /// The job failed (`error` says why); no file is kept.
    Error,
    /// The download window passed and the file was (or is being) removed.
    Expired,
}

impl ExportJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportJobState::Pending => "pending",
            ExportJobState::Ready => "ready",
            ExportJobState::Error => "error",
            ExportJobState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ExportJobState> {
        [
            ExportJobState::Pending,
            ExportJobState::Ready,
            ExportJobState::Error,
            ExportJobState::Expired,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// The error a pending job gets when the process running it stopped beating (see
/// [`ExportSweep::stale_before`]).
pub const EXPORT_INTERRUPTED: &str =
    "interrupted: the server running this export stopped before it finished; create a new export";

/// A new export job, as the server asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExportJob {
    /// `csv`, `json` or `ndjson`.
    pub format: String,
    /// The effective filters as a JSON object (text), as the export file and entry show them.
    pub filters: String,
    /// Which server process runs the job (its address and a random suffix), for operators.
    pub runner: String,
    /// Also the job's first heartbeat.
    pub created_at: Millis,
}

/// An export job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportJob {
    /// `exp_…`, assigned by the store.
    pub id: String,
    pub org: OrgKey,
    pub format: String,
    pub filters: String,
    pub runner: String,
    pub state: ExportJobState,
    pub created_at: Millis,
    /// When the runner last said it is still working on the job.
    pub heartbeat_at: Millis,
    pub finished_at: Option<Millis>,
    /// Entries in the file (ready jobs).
    pub entries: Option<u64>,
    /// The file's size in bytes (ready jobs).
    pub bytes: Option<u64>,
    /// The end of the download window (ready jobs).
    pub expires_at: Option<Millis>,
    /// Why the job failed (error jobs).
    pub error: Option<String>,
}

impl ExportJob {
    /// The state at `now`: a ready job past its window is expired even before the sweep says so.
    pub fn state_at(&self, now: Millis) -> ExportJobState {
        match (self.state, self.expires_at) {
            (ExportJobState::Ready, Some(expires)) if expires <= now => ExportJobState::Expired,
            (state, _) => state,
        }
    }
}

/// How a job ended, as its runner reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportJobOutcome {
    Ready {
        entries: u64,
        bytes: u64,
        finished_at: Millis,
        expires_at: Millis,
    },
    Failed {
        message: String,
        finished_at: Millis,
    },
}

/// What one sweep of the export jobs does, with its times given by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSweep {
    /// Ready jobs whose `expires_at` is at or before this become expired.
    pub now: Millis,
    /// Pending jobs whose last heartbeat is before this become errors ([`EXPORT_INTERRUPTED`]).
    pub stale_before: Millis,
    /// Failed and expired jobs that ended before this are deleted, with their links.
    pub forget_before: Millis,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSweepOutcome {
    pub expired: u64,
    pub interrupted: u64,
    pub forgotten: u64,
}
