//! The retention run: for each organization, remove the entries its retention settings expire,
//! archiving them first when an archive is configured, and record the run in the organization's
//! own trail, even when it removed nothing.
//!
//! Work is done in bounded batches (read a batch, archive it, delete it in one short
//! transaction), so ingest is never held up for longer than one batch. If the archive cannot be
//! written, that batch and everything after it stay in the database: the run stops, says so in
//! its entry and in `/readyz`, and the next run starts over.
//!
//! One exception to the windows: an erasure's own record stays while any entry it erased does
//! (see [`vouches_for_remaining`]), or verification could no longer tell a real erasure from a
//! forged one.

pub mod archive_sink;
pub mod schedule;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use stele_store::metrics::{RETENTION_PRUNED, RETENTION_RUNS};

use serde::Serialize;
use serde_json::{Value, json};
use stele_core::chain::ERASURE_DETAILED_ACTION;
use stele_core::filter::{DetailedActionMatch, EventFilter};
use stele_core::params::PageRequest;
use stele_core::time::{Millis, format_rfc3339};
use stele_core::{Actor, ActorType, Context, Entity, Entry, NewEvent, Outcome, Seq};
use stele_store::{
    Cutoffs, OrgKey, Organization, Receipt, RemovedPerChannel, RetiredEntry, Store, StoreError,
};

/// How many entries one batch reads, archives and deletes.
pub const BATCH: usize = 5_000;

/// The detailed action of a retention run's own entry.
pub const PRUNE_DETAILED_ACTION: &str = "retention.prune";
/// The channel of a retention run's own entry.
pub const PRUNE_CHANNEL: &str = "compliance";

/// Where entries go before the database deletes them. Blocking: it is called on a blocking
/// thread, and it returns only once the entries are durably written.
pub trait ArchiveSink: Send + Sync + 'static {
    fn write(&self, entries: &[RetiredEntry], now: Millis) -> Result<(), String>;

    /// Erases a person from the organization's archived entries as the database erasure does
    /// (`stele_archive::Archive::erase`), durably before it returns.
    fn erase(
        &self,
        org_id: &str,
        person: &stele_core::erase::Person,
        pseudonym: &str,
        now: Millis,
    ) -> Result<stele_archive::ArchiveErasure, String>;

    /// Erases the archived entries with these `seq`s, each with its pseudonym
    /// (`stele_archive::Archive::erase_seqs`).
    fn erase_seqs(
        &self,
        org_id: &str,
        pseudonyms: &BTreeMap<Seq, String>,
        now: Millis,
    ) -> Result<stele_archive::ArchiveErasure, String>;
}

/// Who started a run: shown as the entry's actor and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The daily schedule inside `stele serve`.
    Schedule,
    /// `stele prune`.
    Command,
}

impl Trigger {
    fn source(self) -> &'static str {
        match self {
            Trigger::Schedule => "scheduler",
            Trigger::Command => "cli",
        }
    }
}

/// What one organization's run did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    #[serde(flatten)]
    pub summary: PruneSummary,
    /// The run's own entry.
    pub record: Receipt,
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneSummary {
    pub org_id: String,
    /// Entries that occurred before this were due (channels without their own window).
    pub cutoff: Option<String>,
    /// Channels with their own window, and their cutoffs (`null`: kept forever).
    pub channel_cutoffs: BTreeMap<String, Option<String>>,
    pub removed: RemovedPerChannel,
    pub removed_total: u64,
    pub archived: u64,
    /// Why the run stopped early (the archive could not be written); nothing after that batch
    /// was removed.
    pub error: Option<String>,
}

/// What `/readyz` shows about retention.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionStatus {
    pub last_run_at: Option<String>,
    pub archive_error: Option<String>,
}

pub type SharedStatus = Arc<Mutex<RetentionStatus>>;

/// Runs retention for every organization. A store error stops the run (it is returned); an
/// archive failure stops only that organization's run and is reported in its entry.
pub async fn prune_all(
    store: &dyn Store,
    archive: Option<Arc<dyn ArchiveSink>>,
    now: Millis,
    trigger: Trigger,
    status: Option<&SharedStatus>,
) -> Result<Vec<PruneReport>, StoreError> {
    let reports = match prune_every_org(store, archive, now, trigger).await {
        Ok(reports) => reports,
        Err(error) => {
            metrics::counter!(RETENTION_RUNS, "outcome" => "failed").increment(1);
            return Err(error);
        }
    };
    let pruned: u64 = reports.iter().map(|r| r.summary.removed_total).sum();
    metrics::counter!(RETENTION_PRUNED).increment(pruned);
    let outcome = if reports.iter().any(|r| r.summary.error.is_some()) {
        "archive_failed"
    } else {
        "ok"
    };
    metrics::counter!(RETENTION_RUNS, "outcome" => outcome).increment(1);
    if let Some(status) = status {
        let mut status = status.lock().expect("retention status");
        status.last_run_at = Some(format_rfc3339(now));
        status.archive_error = reports.iter().find_map(|r| {
            let s = &r.summary;
            s.error.as_ref().map(|e| format!("{}: {e}", s.org_id))
        });
    }
    Ok(reports)
}

async fn prune_every_org(
    store: &dyn Store,
    archive: Option<Arc<dyn ArchiveSink>>,
    now: Millis,
    trigger: Trigger,
) -> Result<Vec<PruneReport>, StoreError> {
    // A checkpoint at each chain's head first: it vouches for the hashes pruned entries leave.
    store.checkpoint_now().await?;
    let mut reports = Vec::new();
    for org in store.list_orgs().await? {
        reports.push(prune_org(store, archive.clone(), &org, now, trigger).await?);
    }
    Ok(reports)
}

pub async fn prune_org(
    store: &dyn Store,
    archive: Option<Arc<dyn ArchiveSink>>,
    org: &Organization,
    now: Millis,
    trigger: Trigger,
) -> Result<PruneReport, StoreError> {
    let settings = store.settings(org.key).await?;
    let cutoffs = Cutoffs::at(&settings, now);
    // Erasures recorded after this one may miss a batch on its way to the archive.
    let last_erasure = newest_erasure_seq(store, org.key).await?;
    let mut removed = RemovedPerChannel::new();
    let mut archived = 0u64;
    let mut error = None;
    let mut resume_after = 0;
    loop {
        let batch = store
            .expired_entries(org.key, &cutoffs, resume_after, BATCH)
            .await?;
        if batch.entries.is_empty() {
            break;
        }
        resume_after = batch.resume_after;
        let leaving: HashSet<Seq> = batch.entries.iter().map(|r| r.entry.seq).collect();
        let mut entries = Vec::with_capacity(batch.entries.len());
        for retired in batch.entries {
            if !vouches_for_remaining(store, org.key, &retired.entry, &leaving).await? {
                entries.push(retired);
            }
        }
        if entries.is_empty() {
            continue;
        }
        // Read in occurrence order; archived in chain order, where neighbours link up.
        entries.sort_by_key(|r| r.entry.seq);
        let entries = Arc::new(entries);
        if let Some(archive) = &archive {
            let (archive, to_write) = (archive.clone(), entries.clone());
            let written = tokio::task::spawn_blocking(move || archive.write(&to_write, now))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            if let Err(e) = written {
                tracing::error!(org = %org.id, error = %e, "archive write failed; nothing more is pruned");
                error = Some(format!("the archive could not be written: {e}"));
                break;
            }
            archived += entries.len() as u64;
        }
        let seqs: Vec<Seq> = entries.iter().map(|r| r.entry.seq).collect();
        for (channel, n) in store.prune_entries(org.key, &cutoffs, &seqs).await? {
            *removed.entry(channel).or_default() += n;
        }
        // Let waiting requests in between batches.
        tokio::task::yield_now().await;
    }
    if let Some(archive) = archive.as_ref().filter(|_| archived > 0 && error.is_none())
        && let Err(e) = catch_up_erasures(store, archive.clone(), org, last_erasure, now).await
    {
        tracing::error!(org = %org.id, error = %e, "erasures during the run could not reach the archive");
        error = Some(format!(
            "erasures made during the run could not reach the archive: {e}"
        ));
    }
    let removed_total = removed.values().sum();
    let summary = PruneSummary {
        org_id: org.id.clone(),
        cutoff: cutoffs.default.map(format_rfc3339),
        channel_cutoffs: cutoffs
            .channels
            .iter()
            .map(|(c, t)| (c.clone(), t.map(format_rfc3339)))
            .collect(),
        removed,
        removed_total,
        archived,
        error,
    };
    let record = crate::trail::record(store, org.key, prune_record(&summary, now, trigger)).await?;
    if summary.removed_total > 0 || summary.error.is_some() {
        tracing::info!(org = %org.id, removed = summary.removed_total, error = ?summary.error, "retention run");
    }
    Ok(PruneReport { summary, record })
}

/// The records of erasures: System entries with Stele's own detailed action.
fn erasure_records() -> EventFilter {
    EventFilter {
        detailed_action: Some(DetailedActionMatch::Exact(ERASURE_DETAILED_ACTION.into())),
        actor_types: vec![ActorType::System],
        ..EventFilter::default()
    }
}

/// The `seq` of the organization's newest erasure record, [`Seq::BEFORE_FIRST`] without one.
async fn newest_erasure_seq(store: &dyn Store, org: OrgKey) -> Result<Seq, StoreError> {
    let request = PageRequest {
        filter: erasure_records(),
        limit: 1,
        cursor: None,
    };
    let page = store.list(org, &request).await?;
    Ok(page.entries.first().map_or(Seq::BEFORE_FIRST, |e| e.seq))
}

/// An erasure runs in two steps, the database and then the archive, and a prune batch is read
/// from the database before it is written to the archive. An erasure whose database step falls
/// between the two and whose archive step runs before the batch is written misses the batch's
/// copies. So once the batches are written, every erasure recorded since the run began (after
/// the record `last_erasure`) is applied to the archive again, by the `seq`s its record lists;
/// entries already erased there are left as they are. (Records are listed newest first, and an
/// erasure's record is made when it runs, so they come in `seq` order.)
async fn catch_up_erasures(
    store: &dyn Store,
    archive: Arc<dyn ArchiveSink>,
    org: &Organization,
    last_erasure: Seq,
    now: Millis,
) -> Result<(), String> {
    let mut pseudonyms = BTreeMap::new();
    let mut request = PageRequest {
        filter: erasure_records(),
        limit: 100,
        cursor: None,
    };
    'pages: loop {
        let page = store
            .list(org.key, &request)
            .await
            .map_err(|e| e.to_string())?;
        for record in &page.entries {
            if record.seq <= last_erasure {
                break 'pages;
            }
            let Some(Value::String(pseudonym)) = record.event.metadata.get("pseudonym") else {
                continue;
            };
            for seq in record
                .event
                .entity_ids
                .iter()
                .filter_map(|s| s.parse().ok())
            {
                pseudonyms.insert(seq, pseudonym.clone());
            }
        }
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    if pseudonyms.is_empty() {
        return Ok(());
    }
    let org_id = org.id.clone();
    tokio::task::spawn_blocking(move || archive.erase_seqs(&org_id, &pseudonyms, now))
        .await
        .map_err(|e| e.to_string())?
        .map(|_| ())
}

/// Whether `entry` is an erasure's record and an entry it erased remains (other than those in
/// `leaving`, which this batch removes). Verification checks each erased entry's pseudonym
/// against the record of its erasure, so the record is held back, whatever its channel's window,
/// until the last of them is gone; a later run then removes it. Its covered `seq`s are looked up
/// newest first: older entries expire first, so a remaining one is usually found at once.
async fn vouches_for_remaining(
    store: &dyn Store,
    org: OrgKey,
    entry: &Entry,
    leaving: &HashSet<Seq>,
) -> Result<bool, StoreError> {
    let e = &entry.event;
    if e.detailed_action.as_deref() != Some(ERASURE_DETAILED_ACTION)
        || e.actor.kind != ActorType::System
    {
        return Ok(false);
    }
    let mut covered: Vec<Seq> = e.entity_ids.iter().filter_map(|s| s.parse().ok()).collect();
    covered.sort_unstable_by(|a, b| b.cmp(a));
    for seq in covered {
        if !leaving.contains(&seq) && store.personal_digest(org, seq).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The entry a run leaves in the organization's trail.
fn prune_record(report: &PruneSummary, now: Millis, trigger: Trigger) -> NewEvent {
    let description = match &report.error {
        None => format!(
            "Retention removed {} entries past the retention window",
            report.removed_total
        ),
        Some(e) => format!(
            "Retention removed {} entries, then stopped: {e}",
            report.removed_total
        ),
    };
    // Metadata values are scalars (as for every entry), so the per-channel figures are keys of
    // their own: `removed.auth`, `cutoff.auth`.
    let mut metadata: BTreeMap<String, Value> = [
        ("cutoff", json!(report.cutoff)),
        ("removed_total", json!(report.removed_total)),
        ("archived", json!(report.archived)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (channel, cutoff) in &report.channel_cutoffs {
        metadata.insert(format!("cutoff.{channel}"), json!(cutoff));
    }
    for (channel, n) in &report.removed {
        metadata.insert(format!("removed.{channel}"), json!(n));
    }
    if let Some(error) = &report.error {
        metadata.insert("error".into(), json!(error));
    }
    NewEvent {
        occurred_at: now,
        action: "prune".into(),
        detailed_action: Some(PRUNE_DETAILED_ACTION.into()),
        channel: PRUNE_CHANNEL.into(),
        description: Some(description),
        outcome: if report.error.is_none() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        actor: Actor {
            kind: ActorType::System,
            id: Some("stele-retention".into()),
            name: Some("Retention".into()),
            email: None,
            href: None,
            metadata: Default::default(),
            original_type: None,
        },
        entity: Some(Entity::new("AuditLog", Some(report.org_id.clone()), None)),
        entity_ids: vec![],
        context: Context {
            source: Some(trigger.source().into()),
            ..Context::default()
        },
        changes: vec![],
        metadata,
        idempotency_key: None,
        origin: Default::default(),
        related_entities: Vec::new(),
    }
}
