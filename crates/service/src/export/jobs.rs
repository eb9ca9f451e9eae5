//! Export jobs (`POST /v1/exports`): an export written to a file in the background, then
//! downloaded through short-lived links, like WorkOS's audit log exports.
//!
//! - The job's state is in the database, so any server sharing it can answer a poll; the file is
//!   in `<data_dir>/exports/` of the server that ran the job (docs/scaling.md).
//! - The file is written by the encoder of `GET /v1/export` ([`crate::export`]) under a temporary
//!   name and renamed when complete; the export is then recorded in the trail (with the job id)
//!   and only then is the job marked ready.
//! - A running job beats every [`HEARTBEAT_EVERY`]. A pending job that has not beaten for
//!   [`STALE_AFTER`] (its server crashed or was restarted) is marked failed ("interrupted") by
//!   the next sweep of any server; a runner that finds its job no longer pending stops.
//! - The sweep, every [`SWEEP_EVERY`] (sooner when the link lifetime is shorter) and on the
//!   download of an expired job, expires ready jobs whose window ended and removes every file in
//!   this server's export directory whose job no longer needs it.
//!
//! Errors here are logged and turned into the job's state; nothing in this module answers a
//! client directly.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use stele_core::time::{Millis, now_millis};
use stele_store::{
    ApiKeyInfo, ExportJob, ExportJobOutcome, ExportSweep, NewExportJob, Store, StoreError,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::export::{self, Export, ExportRequest, Exporter, Sink};
use crate::random;

/// The directory, inside the data directory, that holds export files.
pub const EXPORTS_DIR: &str = "exports";
/// How often a running job tells the database it is still alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A pending job whose last heartbeat is older than this is declared interrupted.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a server sweeps (at most: a shorter link lifetime sweeps as often as that).
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Failed and expired jobs are kept this long after they ended, then forgotten (GET answers 404).
pub const KEEP_ENDED_JOBS: Duration = Duration::from_secs(7 * 24 * 3600);
/// Jobs one server runs at a time; the others wait, pending (and beating), for their turn. Each
/// walks the whole trail, so running many at once would only slow every one of them and the
/// requests being served.
pub const RUNNING_PER_SERVER: usize = 2;

/// The export jobs of this server process: starts them, mints their links, sweeps their files.
pub struct ExportJobs {
    store: Arc<dyn Store>,
    dir: PathBuf,
    link_ttl: Duration,
    /// This process, as recorded in the jobs it runs: its address and a random suffix.
    runner: String,
    permits: Semaphore,
    stop: watch::Sender<bool>,
    /// A std Mutex: it is only held to spawn or take tasks, never across an await.
    tasks: Mutex<JoinSet<()>>,
}

/// Why a job ended without a file.
struct Failure {
    /// For the job's `error`, shown to clients: never a driver's text.
    message: &'static str,
    /// For the log.
    cause: String,
}

impl Failure {
    fn new(message: &'static str, cause: impl std::fmt::Display) -> Failure {
        Failure {
            message,
            cause: cause.to_string(),
        }
    }
}

const STORE_FAILED: &str = "the database failed during the export; create a new export";
const WRITE_FAILED: &str = "the export file could not be written on the server";
const NOT_RECORDED: &str = "the export could not be recorded in the trail, so it is not offered";
const STOPPED: &str = "interrupted: the server stopped before the export finished; create a new \
     export";

/// What a runner watches to know it should stop early.
#[derive(Clone)]
struct Cancel {
    stop: watch::Receiver<bool>,
    /// Set when the database says the job is no longer pending (declared interrupted).
    abandoned: Arc<AtomicBool>,
}

impl Cancel {
    fn cancelled(&self) -> bool {
        *self.stop.borrow() || self.abandoned.load(Ordering::Relaxed)
    }
}

/// Writes the encoded chunks to the file, counting bytes, until cancelled or a write fails.
struct FileSink {
    file: tokio::fs::File,
    bytes: u64,
    error: Option<std::io::Error>,
    cancel: Cancel,
}

impl Sink for FileSink {
    async fn send(&mut self, chunk: Vec<u8>) -> bool {
        if self.cancel.cancelled() {
            return false;
        }
        match self.file.write_all(&chunk).await {
            Ok(()) => {
                self.bytes += chunk.len() as u64;
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

impl ExportJobs {
    pub fn new(
        store: Arc<dyn Store>,
        data_dir: &Path,
        link_ttl: Duration,
        address: std::net::SocketAddr,
    ) -> Arc<ExportJobs> {
        let (stop, _) = watch::channel(false);
        Arc::new(ExportJobs {
            store,
            dir: data_dir.join(EXPORTS_DIR),
            link_ttl,
            runner: format!("{address}/{}", &random::token("", 4)),
            permits: Semaphore::new(RUNNING_PER_SERVER),
            stop,
            tasks: Mutex::new(JoinSet::new()),
        })
    }

    /// Where this server writes its jobs' files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a job (only on the server that ran it).
    pub fn path(&self, job: &ExportJob) -> PathBuf {
        self.dir.join(format!("{}.{}", job.id, job.format))
    }

    /// Records a pending job for the key's organization and starts it in the background.
    pub async fn start(
        self: &Arc<Self>,
        key: ApiKeyInfo,
        request: ExportRequest,
    ) -> Result<ExportJob, StoreError> {
        let job = self
            .store
            .create_export_job(
                key.org,
                NewExportJob {
                    format: request.format.as_str().to_string(),
                    filters: serde_json::Value::Object(request.filters.clone()).to_string(),
                    runner: self.runner.clone(),
                    created_at: now_millis(),
                },
            )
            .await?;
        let this = self.clone();
        let task_job = job.clone();
        let mut tasks = self.tasks.lock().expect("export tasks");
        // Finished tasks are reaped here, so the set holds only running ones.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move { this.run(task_job, request, key).await });
        Ok(job)
    }

    /// Runs a job to its end: beats while it waits and writes, then records how it ended.
    async fn run(self: Arc<Self>, job: ExportJob, request: ExportRequest, key: ApiKeyInfo) {
        let cancel = Cancel {
            stop: self.stop.subscribe(),
            abandoned: Arc::new(AtomicBool::new(false)),
        };
        let heartbeat = tokio::spawn(beat(
            self.store.clone(),
            job.id.clone(),
            cancel.abandoned.clone(),
        ));
        let written = self.write(&job, &request, &key, &cancel).await;
        heartbeat.abort();
        let finished_at = now_millis();
        let outcome = match &written {
            Ok((entries, bytes)) => ExportJobOutcome::Ready {
                entries: *entries,
                bytes: *bytes,
                finished_at,
                expires_at: finished_at + self.link_ttl.as_millis() as Millis,
            },
            Err(failure) => {
                tracing::warn!(job = %job.id, cause = %failure.cause, "export job failed");
                ExportJobOutcome::Failed {
                    message: failure.message.to_string(),
                    finished_at,
                }
            }
        };
        let result = if written.is_ok() { "ready" } else { "failed" };
        metrics::counter!(stele_store::metrics::EXPORT_JOBS, "outcome" => result).increment(1);
        match self.store.finish_export_job(&job.id, outcome).await {
            Ok(true) => {
                if let Ok((entries, _)) = written {
                    tracing::info!(job = %job.id, entries, "export job ready");
                }
            }
            Ok(false) => {
                tracing::warn!(job = %job.id, "export job was declared interrupted meanwhile");
                remove(&self.path(&job)).await;
            }
            Err(error) => {
                // It stays pending until a sweep declares it interrupted; its file goes now.
                tracing::error!(job = %job.id, %error, "recording how an export job ended failed");
                remove(&self.path(&job)).await;
            }
        }
    }

    /// Writes the file and records the export; the entry count and file size.
    async fn write(
        &self,
        job: &ExportJob,
        request: &ExportRequest,
        key: &ApiKeyInfo,
        cancel: &Cancel,
    ) -> Result<(u64, u64), Failure> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Failure::new(STOPPED, e))?;
        if cancel.cancelled() {
            return Err(Failure::new(STOPPED, "cancelled before it started"));
        }
        let path = self.path(job);
        let partial = path.with_extension(format!("{}.part", job.format));
        let file = create_private(&self.dir, &partial)
            .await
            .map_err(|e| Failure::new(WRITE_FAILED, format!("{}: {e}", partial.display())))?;
        let written = self
            .write_file(job, request, key, cancel, file, &partial, &path)
            .await;
        if written.is_err() {
            remove(&partial).await;
            remove(&path).await;
        }
        written
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_file(
        &self,
        job: &ExportJob,
        request: &ExportRequest,
        key: &ApiKeyInfo,
        cancel: &Cancel,
        file: tokio::fs::File,
        partial: &Path,
        path: &Path,
    ) -> Result<(u64, u64), Failure> {
        let store = self.store.as_ref();
        // The export time in the file (JSON's `exported_at`) and its download name is when the
        // job was created.
        let export = Export::start(store, job.org, request.clone(), job.created_at)
            .await
            .map_err(|e| Failure::new(STORE_FAILED, e))?;
        let mut sink = FileSink {
            file,
            bytes: 0,
            error: None,
            cancel: cancel.clone(),
        };
        let summary = export.write(store, &mut sink).await;
        if let Some(e) = summary.error {
            return Err(Failure::new(STORE_FAILED, e));
        }
        if let Some(e) = sink.error {
            return Err(Failure::new(WRITE_FAILED, e));
        }
        if !summary.complete {
            return Err(Failure::new(STOPPED, "cancelled while writing"));
        }
        // On disk before it is offered.
        sink.file
            .sync_all()
            .await
            .map_err(|e| Failure::new(WRITE_FAILED, e))?;
        drop(sink.file);
        tokio::fs::rename(partial, path)
            .await
            .map_err(|e| Failure::new(WRITE_FAILED, e))?;

        // Only a complete file is recorded: a job that fails offers nothing, so no data left.
        if cancel.cancelled() {
            return Err(Failure::new(STOPPED, "cancelled before it was recorded"));
        }
        let (actor, context) = crate::access::api_keys::actor_of(key);
        let by = Exporter { actor, context };
        let now = now_millis();
        export::record_job(store, job.org, &job.id, request, &summary, by, now)
            .await
            .map_err(|e| Failure::new(NOT_RECORDED, e))?;
        Ok((summary.entries, sink.bytes))
    }

    /// A new download link for a ready job: a random token, of which the database keeps only the
    /// SHA-256. Returns the token.
    pub async fn mint_link(&self, job: &ExportJob, now: Millis) -> Result<String, StoreError> {
        let token = random::token("", 32);
        self.store
            .add_export_link(&job.id, token_hash(&token), now)
            .await?;
        Ok(token)
    }

    /// Sweeps the database (expired, interrupted and forgotten jobs) and this server's export
    /// directory (files no job needs any more).
    pub async fn sweep(&self) {
        let now = now_millis();
        let sweep = ExportSweep {
            now,
            stale_before: now - STALE_AFTER.as_millis() as Millis,
            forget_before: now - KEEP_ENDED_JOBS.as_millis() as Millis,
        };
        match self.store.sweep_export_jobs(sweep).await {
            Ok(done) if done.expired + done.interrupted + done.forgotten > 0 => {
                tracing::info!(
                    expired = done.expired,
                    interrupted = done.interrupted,
                    forgotten = done.forgotten,
                    "swept export jobs"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "sweeping export jobs failed; will retry"),
        }
        if let Err(error) = self.remove_dead_files().await {
            tracing::warn!(%error, "removing old export files failed; will retry");
        }
    }

    /// Called when a download finds its job expired: the sweep, without waiting for its turn.
    pub async fn expire(&self, job: &ExportJob) {
        remove(&self.path(job)).await;
        self.sweep().await;
    }

    /// Removes every export file (finished or partial) whose job is neither pending nor ready
    /// within its window. The directory is listed before the live jobs are read: a file listed
    /// belongs to a job created before the read, so a live job's file is never removed.
    async fn remove_dead_files(&self) -> anyhow::Result<()> {
        let mut listing = match tokio::fs::read_dir(&self.dir).await {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut files = Vec::new();
        while let Some(entry) = listing.next_entry().await? {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.split('.').next().filter(|id| id.starts_with("exp_")) {
                files.push((id.to_string(), entry.path()));
            }
        }
        if files.is_empty() {
            return Ok(());
        }
        let live: HashSet<String> = self
            .store
            .live_export_job_ids(now_millis())
            .await?
            .into_iter()
            .collect();
        for (id, path) in files {
            if !live.contains(&id) {
                tracing::debug!(file = %path.display(), "removing an export file no job needs");
                remove(&path).await;
            }
        }
        Ok(())
    }

    /// Sweeps now and then every [`SWEEP_EVERY`] (or the link lifetime, if shorter) until the
    /// server stops.
    pub async fn sweep_periodically(self: Arc<Self>) {
        let every = SWEEP_EVERY
            .min(self.link_ttl)
            .max(Duration::from_millis(100));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = self.stop.subscribe();
        // Checked each round, not only awaited: a stop sent before this task first ran is not a
        // change to the receiver it subscribes now.
        while !*stop.borrow_and_update() {
            tokio::select! {
                _ = ticks.tick() => self.sweep().await,
                _ = stop.changed() => {}
            }
        }
    }

    /// Stops the running jobs (they end as failed, "interrupted", and remove their files) and
    /// waits for them, and stops the sweep.
    pub async fn shutdown(&self) {
        // send_replace: the value changes even when no task is watching yet.
        self.stop.send_replace(true);
        self.permits.close();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("export tasks"));
        while tasks.join_next().await.is_some() {}
    }
}

/// Beats for a job every [`HEARTBEAT_EVERY`] until aborted; flags it abandoned when the database
/// says it is no longer pending.
async fn beat(store: Arc<dyn Store>, id: String, abandoned: Arc<AtomicBool>) {
    let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match store.touch_export_job(&id, now_millis()).await {
            Ok(true) => {}
            Ok(false) => {
                abandoned.store(true, Ordering::Relaxed);
                return;
            }
            // The next beat may get through; a job that misses them all is declared interrupted.
            Err(error) => tracing::warn!(job = %id, %error, "an export job's heartbeat failed"),
        }
    }
}

/// SHA-256 of a link token: what the database keeps.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Creates the export directory (owner only) if needed, and a new file in it readable by the
/// owner only: export files hold the trail.
async fn create_private(dir: &Path, path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).await?;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

/// Removes a file; one that is already gone is fine.
/// Removes the organization's export files (in `dir`, a data directory's `exports`) that hold any of `needles`
/// (lowercase; ASCII case is ignored), after an erasure: a file written before it would keep the
/// erased values for the rest of its download window. Returns how many were removed; their jobs
/// then answer as expired, and the export can be made again.
pub async fn remove_files_mentioning(
    store: &dyn Store,
    dir: &Path,
    org: stele_store::OrgKey,
    needles: &[String],
) -> anyhow::Result<u64> {
    let mut listing = match tokio::fs::read_dir(dir).await {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut removed = 0;
    while let Some(entry) = listing.next_entry().await? {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.split('.').next()) else {
            continue;
        };
        if !id.starts_with("exp_") || store.export_job(org, id).await?.is_none() {
            continue;
        }
        let bytes = tokio::fs::read(entry.path()).await?.to_ascii_lowercase();
        let mentions = needles
            .iter()
            .any(|n| !n.is_empty() && bytes.windows(n.len()).any(|w| w == n.as_bytes()));
        if mentions {
            remove(&entry.path()).await;
            removed += 1;
        }
    }
    Ok(removed)
}

async fn remove(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "removing an export file failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (random::token("", 32), random::token("", 32));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
