//! The deliveries a server runs: every active stream whose lease it holds, each on a task of its
//! own, entries after the cursor in `seq` order, the cursor moved only once the receiver has
//! taken them.
//!
//! A supervisor renews this process's leases (`Streams::claim_streams`) every few seconds and
//! starts a worker for each stream it holds. Several servers on one database each claim what
//! nobody holds, so each stream is delivered from exactly one of them; when a server dies its
//! leases expire and another takes its streams over, from their stored cursors. A worker
//! records each attempt's result under the lease and the revision it read, so neither a server
//! that lost its lease nor a delivery read before a change can move a cursor.
//!
//! Guarantees: in order, at least once (a batch the receiver took but whose cursor was not yet
//! recorded is sent again after a crash), entry ids as the de-duplication key.
//!
//! A platform-wide stream's worker reads where the stream stands in every organization
//! (`Streams::stream_progress`, one read) and queues the organizations that are behind; each
//! batch is filled from the front of the queue, an organization's entries after another's, and
//! an organization with entries left after the batch goes to the back, so one busy organization
//! does not hold the others back. Once the queue is empty, it reads again. One batch may hold
//! several organizations' entries, and its delivery moves their cursors together: a trail spread
//! thin over many organizations still goes out in full batches.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use stele_core::event::{Actor, ActorType, Context, Entry};
use stele_core::time::Millis;
use stele_store::{DeliveryReport, OrgKey, OrgProgress, Store, Stream, StreamClaim, StreamState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::envelope::{self, Format};
use super::nats::{Message, Nats};
use super::target_guard::TargetGuard;
use super::tls::StreamTls;
use super::{
    Outcome, STREAM_FAILING, STREAM_PAUSED, STREAM_RECOVERED, StreamSecrets, StreamSpec, Transport,
    native_record, syslog, webhook,
};
use crate::clock::SharedClock;
use crate::trail::By;

/// Entries each stream delivered (label `stream`: its id).
pub const DELIVERED_ENTRIES: &str = "stele_stream_delivered_entries_total";
/// Failed delivery attempts of each stream (label `stream`), refusals included.
pub const FAILURES: &str = "stele_stream_failures_total";

/// How a server runs its deliveries.
#[derive(Clone)]
pub struct DeliveryConfig {
    /// This process, as leases name it (unique per process).
    pub owner: String,
    pub guard: TargetGuard,
    pub secrets: StreamSecrets,
    pub clock: SharedClock,
    /// How long a lease lasts without renewal: how soon another server takes over a dead one's
    /// streams.
    pub lease: Duration,
    /// How often a caught-up stream looks for new entries: its delivery's latency when idle.
    pub poll: Duration,
    /// How often the supervisor claims streams and renews its leases: how soon a new or resumed
    /// stream starts delivering.
    pub claim_every: Duration,
    /// The operator's NATS server, if it has one (`--nats-url`).
    pub nats: Option<Arc<Nats>>,
    /// The certificates receivers reached over TLS must chain to.
    pub tls: StreamTls,
    /// The longest wait between a failing stream's attempts: the back-off doubles up to it.
    pub max_backoff: Duration,
    /// Whether this is the only process that can deliver (the embedded database, which one server
    /// serves): its first claim takes every lease at once, so that after a crash its streams
    /// resume as soon as it is back instead of when the dead process's leases run out.
    pub sole_server: bool,
}

impl DeliveryConfig {
    pub fn new(
        owner: String,
        guard: TargetGuard,
        secrets: StreamSecrets,
        clock: SharedClock,
    ) -> Self {
        DeliveryConfig {
            owner,
            guard,
            secrets,
            clock,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            claim_every: Duration::from_secs(1),
            sole_server: false,
            nats: None,
            max_backoff: DEFAULT_MAX_BACKOFF,
            tls: StreamTls::default(),
        }
    }
}

/// The running deliveries; [`Deliveries::shutdown`] stops them and gives up the leases.
pub struct Deliveries {
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

/// Starts the deliveries of `store`'s streams.
pub fn spawn(store: Arc<dyn Store>, config: DeliveryConfig) -> Deliveries {
    let (stop, stopped) = watch::channel(false);
    let supervisor = tokio::spawn(supervise(store, config, stopped));
    Deliveries { stop, supervisor }
}

impl Deliveries {
    /// Lets every worker finish the attempt it is in (up to a few seconds), then gives up this
    /// process's leases so that another server takes its streams over at once.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
    }
}

async fn supervise(
    store: Arc<dyn Store>,
    config: DeliveryConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let http = webhook::client(config.guard, &config.tls);
    let hostname: Arc<str> = syslog::hostname().into();
    let mut workers: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut first = true;
    loop {
        workers.retain(|_, worker| !worker.is_finished());
        let now = config.clock.0.now();
        let claim = StreamClaim {
            owner: config.owner.clone(),
            // A sole server's earlier run is the only other holder there can be, and it is gone.
            now: if first && config.sole_server {
                Millis::MAX
            } else {
                now
            },
            until: now + config.lease.as_millis() as Millis,
            // Renewed once half the lease has run, not at every claim.
            renew_before: now + (config.lease / 2).as_millis() as Millis,
        };
        first = false;
        match store.claim_streams(claim).await {
            Ok(streams) => {
                for stream in streams {
                    if workers.contains_key(&stream.id) {
                        continue;
                    }
                    let worker = Worker {
                        store: store.clone(),
                        config: config.clone(),
                        http: http.clone(),
                        hostname: hostname.clone(),
                        stopped: stopped.clone(),
                        retrying: None,
                    };
                    workers.insert(stream.id.clone(), tokio::spawn(worker.run(stream)));
                }
            }
            Err(error) => tracing::warn!(%error, "claiming log streams failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.claim_every) => {}
            _ = stopped.changed() => break,
        }
    }
    for (_, mut worker) in workers {
        if tokio::time::timeout(Duration::from_secs(5), &mut worker)
            .await
            .is_err()
        {
            worker.abort();
            tracing::warn!("a log stream's delivery did not stop within 5 s; stopped it");
        }
    }
    if let Err(error) = store.release_streams(&config.owner).await {
        tracing::warn!(%error, "giving up the log streams' leases failed");
    }
}

struct Worker {
    store: Arc<dyn Store>,
    config: DeliveryConfig,
    http: reqwest::Client,
    hostname: Arc<str>,
    stopped: watch::Receiver<bool>,
    /// The batch that failed last, so that its retry is the same message (the same entries and
    /// `webhook-id`) even if more entries came meanwhile: the stream's revision then, and each
    /// organization's part of it.
    retrying: Option<(u64, Vec<Part>)>,
}

/// What an attempt reads of one organization: its entries after `after`, at most `limit` of
/// them, none after `up_to` (a retry's, to send the same batch again).
struct Want {
    org: OrgKey,
    org_id: String,
    after: stele_core::Seq,
    limit: usize,
    up_to: Option<stele_core::Seq>,
}

/// One organization's entries in a batch: the cursor they follow, and the first and last entries
/// they account for (sent, or skipped by the filter).
#[derive(Clone)]
struct Part {
    org: OrgKey,
    org_id: String,
    after: stele_core::Seq,
    first: stele_core::Seq,
    last: stele_core::Seq,
}

/// The longest wait a receiver's `Retry-After` is honoured for: longer, and the stream would
/// look stuck; the receiver can still refuse the next attempt.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How often a worker reads its stream's row again while it has nothing to deliver, to notice a
/// pause, a change or a lost lease.
const REFRESH: Duration = Duration::from_secs(1);

impl Worker {
    async fn run(mut self, first: Stream) {
        let org_id = match self.store.list_orgs().await {
            Ok(orgs) => match orgs.into_iter().find(|o| o.key == first.org) {
                Some(org) => org.id,
                None => return,
            },
            Err(error) => {
                tracing::warn!(%error, stream = %first.id, "reading a log stream's organization failed");
                return;
            }
        };
        // A platform-wide stream's organizations with entries to deliver, as they stood at the
        // stream's revision beside them, in the order they are served.
        let mut behind: VecDeque<OrgProgress> = VecDeque::new();
        let mut behind_revision = first.revision;
        tracing::info!(stream = %first.id, owner = %self.config.owner, "delivering a log stream");
        let mut stream = first;
        // When the stream's row was last read; `None` to read it before the next attempt.
        let mut read_at = Some(self.config.clock.0.now());
        loop {
            if *self.stopped.borrow() {
                return;
            }
            let now = self.config.clock.0.now();
            if read_at.is_none_or(|at| now - at >= REFRESH.as_millis() as Millis) {
                match self.store.stream(stream.org, &stream.id).await {
                    Ok(Some(fresh)) => stream = fresh,
                    Ok(None) => return,
                    Err(error) => {
                        tracing::warn!(%error, stream = %stream.id, "reading a log stream failed");
                        self.pause(self.config.poll).await;
                        continue;
                    }
                }
                read_at = Some(now);
            }
            let held = stream.state == StreamState::Active
                && stream.lease_owner.as_deref() == Some(self.config.owner.as_str())
                && stream.lease_until.is_some_and(|until| until > now);
            if !held {
                return;
            }
            if let Some(retry_at) = stream.retry_at.filter(|t| *t > now) {
                let wait = Duration::from_millis((retry_at - now) as u64).min(REFRESH);
                self.pause(wait).await;
                // Re-read before retrying: a person may have resumed or changed it meanwhile.
                read_at = None;
                continue;
            }
            let wants = match self.retry_of(&stream) {
                Some(wants) => wants,
                None if !stream.platform_wide => vec![Want {
                    org: stream.org,
                    org_id: org_id.clone(),
                    after: stream.cursor,
                    limit: usize::MAX,
                    up_to: None,
                }],
                None => {
                    // A change (a rewind above all) makes the cursors read before it stale.
                    if stream.revision != behind_revision {
                        behind.clear();
                        behind_revision = stream.revision;
                    }
                    if behind.is_empty() {
                        match self.store.stream_progress(&stream.id).await {
                            Ok(progress) => {
                                behind.extend(progress.into_iter().filter(|p| p.behind() > 0))
                            }
                            Err(error) => {
                                tracing::warn!(%error, stream = %stream.id, "reading a log stream's cursors failed");
                                self.pause(self.config.poll).await;
                                continue;
                            }
                        }
                    }
                    // Each organization read gives the batch one entry at least.
                    let most = super::MAX_MAX_ENTRIES as usize;
                    (behind.iter().take(most))
                        .map(|p| Want {
                            org: p.org,
                            org_id: p.org_id.clone(),
                            after: p.cursor,
                            limit: p.behind() as usize,
                            up_to: None,
                        })
                        .collect()
                }
            };
            match self.step(&stream, &wants).await {
                // Nothing after the cursors (or, for a platform-wide stream, nothing left of what
                // was behind: retention removed it).
                Step::Idle => {
                    behind.clear();
                    self.pause(self.config.poll).await;
                }
                Step::Recorded { served } => {
                    // The organizations the batch read leave the queue; one with entries left
                    // goes to the back, its cursor where the batch left it.
                    for (org, taken) in served {
                        let Some(at) = behind.iter().position(|p| p.org == org) else {
                            continue;
                        };
                        let mut progress = behind.remove(at).expect("a position in the queue");
                        if let Some(last) = taken.filter(|last| *last < progress.head) {
                            progress.cursor = last;
                            behind.push_back(progress);
                        }
                    }
                    read_at = None;
                }
                Step::Failed(wait) => {
                    self.pause(wait).await;
                    read_at = None;
                }
            }
        }
    }

    /// The reads that send the batch that failed last again, if it is still the stream's next:
    /// the stream has not changed since, and (an organization's stream) its cursor has not moved.
    fn retry_of(&mut self, stream: &Stream) -> Option<Vec<Want>> {
        let still = self.retrying.as_ref().is_some_and(|(revision, parts)| {
            *revision == stream.revision
                && (stream.platform_wide || parts.first().map(|p| p.after) == Some(stream.cursor))
        });
        if !still {
            self.retrying = None;
            return None;
        }
        let (_, parts) = self.retrying.as_ref()?;
        Some(
            parts
                .iter()
                .map(|part| Want {
                    org: part.org,
                    org_id: part.org_id.clone(),
                    after: part.after,
                    limit: (part.last.get() - part.after.get()).max(1) as usize,
                    up_to: Some(part.last),
                })
                .collect(),
        )
    }

    /// Sleeps, unless the server is stopping.
    async fn pause(&mut self, wait: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.stopped.changed() => {}
        }
    }

    /// One attempt: the next batch (each wanted organization's entries after its cursor, in
    /// turn, up to the stream's limits), sent, and its result recorded.
    async fn step(&mut self, stream: &Stream, wants: &[Want]) -> Step {
        let spec = match StreamSpec::parse_stored(&stream.spec) {
            Ok(spec) => spec,
            Err(error) => {
                tracing::error!(%error, stream = %stream.id, "a log stream's spec is unreadable");
                return Step::Failed(REFRESH);
            }
        };
        // What to read of each organization: its entries up to the room the ones before it left
        // (an organization's `limit` counts what it may have; retention may have taken some).
        let mut reads = Vec::new();
        let mut room = spec.max_entries as usize;
        for want in wants {
            if room == 0 {
                break;
            }
            let take = want.limit.min(room);
            reads.push((want.org, want.after, take));
            room -= take;
        }
        let read = match reads.as_slice() {
            [(org, after, limit)] => {
                (self.store.entries_after(*org, *after, *limit).await).map(|entries| vec![entries])
            }
            _ => self.store.entries_after_each(reads).await,
        };
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(%error, stream = %stream.id, "reading a log stream's entries failed");
                return Step::Failed(self.config.poll);
            }
        };
        let mut batch = Batch::default();
        for (want, entries) in wants.iter().zip(&read) {
            if batch.full {
                break;
            }
            batch.add(&spec, want, entries);
        }
        if batch.parts.is_empty() {
            return Step::Idle;
        }
        // The row again, right before sending: a pause, a change or a lost lease since it was
        // read stops the batch here rather than after the receiver has it.
        match self.store.stream(stream.org, &stream.id).await {
            Ok(Some(fresh))
                if fresh.revision == stream.revision
                    && fresh.lease_owner == stream.lease_owner
                    && fresh.cursor == stream.cursor => {}
            Ok(_) => return Step::Recorded { served: Vec::new() },
            Err(error) => {
                tracing::warn!(%error, stream = %stream.id, "reading a log stream failed");
                return Step::Failed(self.config.poll);
            }
        }
        let now = self.config.clock.0.now();
        let outcome = if batch.records.is_empty() {
            Outcome::Delivered
        } else {
            self.send(stream, &spec, &batch, now).await
        };
        let at = self.config.clock.0.now();
        let delivered = matches!(outcome, Outcome::Delivered);
        let (report, wait) = match outcome {
            Outcome::Delivered => {
                self.retrying = None;
                let cursors = batch.parts.iter().map(|p| (p.org, p.last)).collect();
                let entries = batch.records.len() as u64;
                (
                    DeliveryReport::Delivered {
                        cursors,
                        entries,
                        at,
                    },
                    None,
                )
            }
            Outcome::Retry { error, after } => {
                self.retrying = Some((stream.revision, batch.parts.clone()));
                let wait = after
                    .map(|after| after.min(MAX_RETRY_AFTER))
                    .unwrap_or_else(|| backoff(stream.failures, self.config.max_backoff));
                (
                    DeliveryReport::Failed {
                        error,
                        at,
                        retry_at: at + wait.as_millis() as Millis,
                    },
                    Some(wait),
                )
            }
            Outcome::Refused(error) => (DeliveryReport::Refused { error, at }, None),
        };
        let label = [("stream", stream.id.clone())];
        match &report {
            DeliveryReport::Delivered { entries, .. } => {
                metrics::counter!(DELIVERED_ENTRIES, &label).increment(*entries);
            }
            _ => metrics::counter!(FAILURES, &label).increment(1),
        }
        let recorded = self
            .store
            .record_delivery(
                &stream.id,
                &self.config.owner,
                stream.revision,
                report.clone(),
            )
            .await;
        match recorded {
            Ok(true) => self.record_transition(stream, &report, at).await,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, stream = %stream.id, "recording a log stream's delivery failed");
                return Step::Failed(self.config.poll);
            }
        }
        match wait {
            Some(wait) => Step::Failed(wait.min(REFRESH)),
            None if delivered => Step::Recorded {
                served: batch.served,
            },
            None => Step::Recorded { served: Vec::new() },
        }
    }

    async fn send(
        &self,
        stream: &Stream,
        spec: &StreamSpec,
        batch: &Batch,
        now: Millis,
    ) -> Outcome {
        match &spec.transport {
            Transport::Webhook { url, headers } => {
                let headers = match self.config.secrets.open_headers(headers) {
                    Ok(headers) => headers,
                    Err(name) => {
                        return Outcome::Refused(format!(
                            "the stream's header `{name}` was sealed with another signing key; \
                             set the stream's transport again"
                        ));
                    }
                };
                let format = Format::parse(&spec.format).unwrap_or(Format::Native);
                let payload = envelope::payload(
                    format,
                    &envelope::Records {
                        stream_id: &stream.id,
                        org_id: (!stream.platform_wide).then_some(batch.parts[0].org_id.as_str()),
                        hostname: &self.hostname,
                        records: &batch.records,
                        entries: &batch.entries,
                        now,
                    },
                );
                let id = batch.message_id(stream);
                let keys = self.config.secrets.signing_keys(stream, now);
                webhook::post(
                    &self.http,
                    self.config.guard,
                    webhook::Message {
                        url,
                        id: &id,
                        timestamp: now / 1000,
                        payload,
                        format,
                        headers: &headers,
                        keys: &keys,
                    },
                )
                .await
            }
            Transport::Syslog { host, port, tls } => {
                let mut frames = String::new();
                for (record, entry) in batch.records.iter().zip(&batch.entries) {
                    frames.push_str(&syslog::frame(
                        &self.hostname,
                        entry.0,
                        entry.1,
                        &record.to_string(),
                    ));
                }
                let tls = tls.then_some(&self.config.tls);
                syslog::send(self.config.guard, tls, host, *port, &frames).await
            }
            Transport::Nats => match &self.config.nats {
                Some(nats) => {
                    let messages: Vec<Message<'_>> = batch
                        .records
                        .iter()
                        .zip(&batch.record_parts)
                        .map(|(record, part)| Message {
                            org_id: &batch.parts[*part].org_id,
                            id: record["id"].as_str().unwrap_or_default().to_string(),
                            record: serde_json::to_vec(record).expect("JSON serializes"),
                        })
                        .collect();
                    nats.publish(&messages).await
                }
                None => Outcome::Retry {
                    error: "this server publishes to no NATS server (--nats-url); another server \
                            sharing the database may"
                        .into(),
                    after: None,
                },
            },
        }
    }

    /// Records in the organization's trail a stream's change of health that the delivery caused:
    /// failing after a success, recovered after failures, paused by the receiver's refusal.
    async fn record_transition(&self, stream: &Stream, report: &DeliveryReport, at: Millis) {
        let (detailed, description) = match report {
            DeliveryReport::Delivered { .. } if stream.failures > 0 => (
                STREAM_RECOVERED,
                format!(
                    "Log stream \"{}\" delivers again after {} failed attempts",
                    stream.name, stream.failures
                ),
            ),
            DeliveryReport::Failed { error, .. } if stream.failures == 0 => (
                STREAM_FAILING,
                format!("Log stream \"{}\" is failing: {error}", stream.name),
            ),
            DeliveryReport::Refused { error, .. } => (
                STREAM_PAUSED,
                format!("Log stream \"{}\" paused: {error}", stream.name),
            ),
            _ => return,
        };
        let mut actor = Actor::of_kind(ActorType::System);
        actor.name = Some("log stream delivery".into());
        let by = By::new(actor, Context::default());
        let event = super::stream_event(
            by.actor.clone(),
            by.context.clone(),
            stream,
            detailed,
            "update",
            description,
            Vec::new(),
            at,
        );
        if let Err(error) = crate::trail::record(self.store.as_ref(), stream.org, event).await {
            tracing::warn!(%error, stream = %stream.id, "recording a log stream's change failed");
        }
    }
}

enum Step {
    /// Nothing new after the cursors.
    Idle,
    /// A result was recorded (or the recording was refused, or the stream changed): go on at
    /// once, from the stream's row as it is now. `served`: when the batch was delivered, each
    /// organization it read, with the last entry it took there (`None`: none was left).
    Recorded {
        served: Vec<(OrgKey, Option<stele_core::Seq>)>,
    },
    /// Try again after this.
    Failed(Duration),
}

/// The entries of one attempt: those read after the cursors up to the batch's limits, the ones
/// the filter keeps as records, and where each organization's cursor goes if they are taken.
#[derive(Default)]
struct Batch {
    /// Each organization's part, in the order they were read; an organization at most once.
    parts: Vec<Part>,
    records: Vec<serde_json::Value>,
    /// Each record's part (an index in `parts`).
    record_parts: Vec<usize>,
    /// Each record's entry's occurrence and outcome (what a syslog message's header says).
    entries: Vec<(Millis, stele_core::Outcome)>,
    /// The records' size, against the stream's `max_bytes`.
    bytes: usize,
    /// Whether the next record would not fit.
    full: bool,
    /// Each organization read, with the last entry taken there (`None`: nothing was left).
    served: Vec<(OrgKey, Option<stele_core::Seq>)>,
}

impl Batch {
    /// Adds `entries` (read after `want.after`) as far as the batch's limits and `want.up_to`
    /// allow.
    fn add(&mut self, spec: &StreamSpec, want: &Want, entries: &[Entry]) {
        let Some(head) = entries.first() else {
            self.served.push((want.org, None));
            return;
        };
        let mut part = Part {
            org: want.org,
            org_id: want.org_id.clone(),
            after: want.after,
            first: head.seq,
            last: head.seq,
        };
        let mut taken = false;
        for entry in entries {
            if want.up_to.is_some_and(|last| entry.seq > last) {
                break;
            }
            if spec.filter.matches(entry) {
                let record = native_record(&want.org_id, entry);
                let size = record.to_string().len();
                if !self.records.is_empty() && self.bytes + size > spec.max_bytes as usize {
                    self.full = true;
                    break;
                }
                self.bytes += size;
                self.records.push(record);
                self.record_parts.push(self.parts.len());
                self.entries
                    .push((entry.event.occurred_at, entry.event.outcome));
            }
            part.last = entry.seq;
            taken = true;
        }
        // An organization whose first entry did not fit is not served: it waits at the front.
        if taken {
            self.served.push((want.org, Some(part.last)));
            self.parts.push(part);
        }
    }

    /// The webhook's `webhook-id`: the same batch has the same id whenever it is sent again, and
    /// no other batch of the stream has it.
    fn message_id(&self, stream: &Stream) -> String {
        match self.parts.as_slice() {
            [only] if !stream.platform_wide => {
                format!("{}_{}_{}", stream.id, only.first, only.last)
            }
            [only] => format!("{}_{}_{}_{}", stream.id, only.org_id, only.first, only.last),
            parts => {
                // Several organizations' entries: a digest of each one's span.
                use sha2::Digest as _;
                let mut digest = sha2::Sha256::new();
                for part in parts {
                    digest.update(format!("{}:{}:{};", part.org_id, part.first, part.last));
                }
                format!("{}_{}", stream.id, hex::encode(&digest.finalize()[..16]))
            }
        }
    }
}

/// The back-off's ceiling unless the operator sets another (`--streams-max-backoff`).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The wait before attempt `failures + 1`: one second doubling per failure up to `ceiling`, each
/// wait drawn between half and all of that (jitter, so that receivers coming back are not hit by
/// every stream at once).
pub fn backoff(failures: u32, ceiling: Duration) -> Duration {
    let ceiling = Duration::from_secs(1)
        .saturating_mul(1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX))
        .min(ceiling);
    let fraction = u64::from_le_bytes(crate::random::bytes::<8>()) as f64 / u64::MAX as f64;
    ceiling.mul_f64(0.5 + fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_minutes_with_jitter() {
        for (failures, ceiling) in [(0, 1), (1, 2), (3, 8), (8, 256), (9, 300), (40, 300)] {
            let wait = backoff(failures, DEFAULT_MAX_BACKOFF);
            let ceiling = Duration::from_secs(ceiling);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{failures}: {wait:?}"
            );
        }
    }
}
