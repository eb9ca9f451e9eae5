//! The client handle: [`Client::record`] puts an event in a bounded queue and returns; a
//! background task ([`crate::delivery`]) sends the queue in batches. This module holds the
//! handle, its builder and the types callers see; it never talks HTTP itself.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use http::{HeaderMap, HeaderValue};
use tokio::sync::{mpsc, oneshot, watch};

use crate::delivery::{Settings, Worker};
use crate::event::Event;

/// The most events one request may carry (the server's limit).
pub const MAX_BATCH_SIZE: usize = 1000;

/// What happens to an event the server refused or that could not be delivered: see
/// [`ClientBuilder::on_failure`].
pub(crate) type FailureHandler = Arc<dyn Fn(FailedEvent) + Send + Sync>;

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    url: String,
    api_key: String,
    organization: Option<String>,
    settings: Settings,
    queue_capacity: usize,
    request_timeout: Duration,
    connect_timeout: Duration,
    on_failure: Option<FailureHandler>,
}

/// Never shows the API key.
impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("api_key", &"[hidden]")
            .field("organization", &self.organization)
            .field("settings", &self.settings)
            .field("queue_capacity", &self.queue_capacity)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Events per request, 1 to 1000. Default 500. A batch is sent when it is full, when
    /// [`flush_interval`](Self::flush_interval) has passed since its first event, or when a
    /// flush asks.
    pub fn batch_size(mut self, events: usize) -> Self {
        self.settings.batch_size = events;
        self
    }

    /// The largest request body the client makes, in bytes. Default 4 MiB (the server takes 8 MiB
    /// by default, `--max-body-bytes`). A batch is closed before an event would take it over;
    /// an event larger than this on its own is sent alone.
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_batch_bytes = bytes;
        self
    }

    /// How long the first event of a batch waits for more before the batch is sent. Default 1 s.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.settings.flush_interval = interval;
        self
    }

    /// How many events may wait to be sent. Default 10,000. When it is full,
    /// [`Client::record`] waits for room and [`Client::try_record`] returns the event.
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events;
        self
    }

    /// How many times a batch is sent again after a network error, a timeout, a 408, a 429 or a
    /// 5xx, before its events are given up (reported to [`on_failure`](Self::on_failure)).
    /// Default 10 (with the default backoff, one to two minutes of trying).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.settings.max_retries = retries;
        self
    }

    /// The wait before the first retry, doubled for each retry up to `max`, each wait drawn at
    /// random between half of it and all of it (so that many clients do not come back at once).
    /// Default 250 ms up to 30 s. A `Retry-After` in the answer (429, 503) is waited instead.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.settings.initial_backoff = initial;
        self.settings.max_backoff = max;
        self
    }

    /// How long one request may take, from connecting to reading the answer. Default 30 s; a
    /// request that takes longer is retried (with the same idempotency key).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// With a platform key: the organization of every event that names none itself
    /// ([`EventBuilder::organization`](crate::EventBuilder::organization)), sent as the
    /// `Stele-Organization` header.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Called, on the client's background task, for each event that will not be stored: refused
    /// by the server (a 4xx other than 408 and 429: an invalid event, a revoked key) or given up
    /// after [`max_retries`](Self::max_retries). The event is dropped from the queue; the report
    /// carries its JSON, to keep or send again. Keep the handler quick (hand the report to a
    /// channel): the queue waits while it runs. Without one, each such failure is logged (an
    /// `ERROR` through `tracing`, without the event's content).
    pub fn on_failure(mut self, handler: impl Fn(FailedEvent) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(Arc::new(handler));
        self
    }

    /// Starts the client's background task, on the current tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("Client::build must be called within a tokio runtime".into())
        })?;
        let endpoint = endpoint(&self.url)?;
        let s = &self.settings;
        if !(1..=MAX_BATCH_SIZE).contains(&s.batch_size) {
            return Err(Error::Config(format!(
                "batch_size must be 1 to {MAX_BATCH_SIZE}, not {}",
                s.batch_size
            )));
        }
        if self.queue_capacity == 0 {
            return Err(Error::Config("queue_capacity must be at least 1".into()));
        }
        if s.initial_backoff > s.max_backoff {
            return Err(Error::Config(
                "the initial backoff must not be longer than the longest".into(),
            ));
        }
        let mut headers = HeaderMap::new();
        let mut authorization = HeaderValue::try_from(format!("Bearer {}", self.api_key.trim()))
            .ok()
            .filter(|_| !self.api_key.trim().is_empty())
            // Never the key itself in the message.
            .ok_or_else(|| Error::Config("the API key must be visible ASCII".into()))?;
        authorization.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, authorization);
        if let Some(org) = &self.organization {
            let value = HeaderValue::try_from(org.as_str()).map_err(|_| {
                Error::Config(format!("organization `{org}` is not a valid header value"))
            })?;
            headers.insert("stele-organization", value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("stele-client/", env!("CARGO_PKG_VERSION")))
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            // Below the server's 60 s idle timeout, so a pooled connection is rarely found closed
            // (and when it is, the batch is simply sent again).
            .pool_idle_timeout(Duration::from_secs(30))
            // A POST redirected would become a GET: a redirect is a misconfigured URL, reported.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("the HTTP client: {e}")))?;

        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let (stopped_tx, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            rx,
            http,
            endpoint,
            settings: self.settings,
            shared: shared.clone(),
            on_failure: self.on_failure,
            stopped: stopped_tx,
        };
        runtime.spawn(worker.run());
        Ok(Client {
            inner: Arc::new(Inner {
                tx,
                shared,
                stopped,
                capacity: self.queue_capacity,
            }),
        })
    }
}

/// `{base}/v1/events`, keeping a path the base may have (a Stele behind `/audit/`).
fn endpoint(url: &str) -> Result<reqwest::Url, Error> {
    let mut base = reqwest::Url::parse(url.trim())
        .map_err(|e| Error::Config(format!("the server URL `{url}`: {e}")))?;
    match base.scheme() {
        "http" => {}
        "https" if cfg!(feature = "rustls") => {}
        "https" => {
            return Err(Error::Config(
                "an https URL needs the crate's `rustls` feature (on by default)".into(),
            ));
        }
        other => {
            return Err(Error::Config(format!(
                "the server URL must be http or https, not `{other}`"
            )));
        }
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(Error::Config(
            "the server URL must not hold credentials: the API key is given apart".into(),
        ));
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.set_query(None);
    base.join("v1/events")
        .map_err(|e| Error::Config(format!("the server URL `{url}`: {e}")))
}

/// A handle to the client; clones share one queue and one background task.
///
/// Events are sent in order, one request at a time, so that each organization's trail holds
/// them in the order they were recorded (a retry included).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Inner {
    tx: mpsc::Sender<Message>,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
    capacity: usize,
}

/// Dropping the last handle without [`Client::shutdown`] leaves the background task to send what
/// is queued for as long as the runtime runs; if the process ends first, those events are lost.
/// Say so, with how many.
impl Drop for Inner {
    fn drop(&mut self) {
        let left = self.shared.queued.load(Ordering::Acquire);
        if left > 0 && !self.shared.shutting_down.load(Ordering::Acquire) {
            tracing::warn!(
                events = left,
                "stele client dropped without shutdown(): {left} events are not acknowledged yet; \
                 they are still sent while the runtime runs, and lost if the process exits first"
            );
        }
    }
}

/// Counters the handle and the background task share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Enqueued and not yet acknowledged or given up.
    pub(crate) queued: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) not_recorded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) shutting_down: AtomicBool,
}

pub(crate) enum Message {
    Event(Pending),
    /// Answered once every event enqueued before it is settled.
    Flush(oneshot::Sender<()>),
    /// Send everything, accept nothing more, stop.
    Shutdown,
}

/// An event in the queue: its JSON as it will be sent, made once when it was recorded.
pub(crate) struct Pending {
    pub(crate) json: String,
    pub(crate) key: String,
    pub(crate) action: String,
    pub(crate) organization: Option<String>,
    /// For [`Client::record_and_wait`]: where its receipt goes; such an event is also sent at
    /// once (with whatever else is waiting) rather than after the flush interval.
    pub(crate) reply: Option<oneshot::Sender<Result<Receipt, DeliveryError>>>,
}

impl Pending {
    fn new(
        mut event: Event,
        reply: Option<oneshot::Sender<Result<Receipt, DeliveryError>>>,
    ) -> Self {
        let key = event.stamp(Utc::now()).to_string();
        Pending {
            json: event.to_json(),
            key,
            action: event.action().to_string(),
            organization: event.organization().map(str::to_string),
            reply,
        }
    }
}

impl Client {
    /// A client for the Stele at `url` (`https://audit.example.com`; the API is under
    /// `/v1/` of it) with this API key (the `ingest` scope is enough). Call
    /// [`build`](ClientBuilder::build) within a tokio runtime.
    pub fn builder(url: impl Into<String>, api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            api_key: api_key.into(),
            organization: None,
            settings: Settings::default(),
            queue_capacity: 10_000,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            on_failure: None,
        }
    }

    /// Puts the event in the queue; it is sent in the background. Waits while the queue is full
    /// (back-pressure: a caller never runs ahead of what the server takes by more than the
    /// queue). Sets `occurred_at` to now unless the event has one, and gives the event its
    /// idempotency key. Fails only once the client is shut down.
    pub async fn record(&self, event: Event) -> Result<(), Error> {
        let permit = self.inner.tx.reserve().await.map_err(|_| Error::Closed)?;
        self.inner.shared.queued.fetch_add(1, Ordering::AcqRel);
        permit.send(Message::Event(Pending::new(event, None)));
        Ok(())
    }

    /// [`record`](Self::record) without waiting: when the queue is full (or the client shut
    /// down) the event is given back in the error, untouched, for the caller to decide (drop it,
    /// keep it, try later).
    pub fn try_record(&self, event: Event) -> Result<(), TryRecordError> {
        match self.inner.tx.try_reserve() {
            Ok(permit) => {
                self.inner.shared.queued.fetch_add(1, Ordering::AcqRel);
                permit.send(Message::Event(Pending::new(event, None)));
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(TryRecordError::Full {
                event: Box::new(event),
                capacity: self.inner.capacity,
            }),
            Err(mpsc::error::TrySendError::Closed(())) => Err(TryRecordError::Closed {
                event: Box::new(event),
            }),
        }
    }

    /// Records the event and waits for the server's receipt (its `id` and `seq`). The event is
    /// sent at once, in a batch with whatever else is waiting in the queue. A refused or given-up
    /// event is an [`Error::Delivery`] (and is reported to the failure handler as well).
    pub async fn record_and_wait(&self, event: Event) -> Result<Receipt, Error> {
        let (tx, rx) = oneshot::channel();
        let permit = self.inner.tx.reserve().await.map_err(|_| Error::Closed)?;
        self.inner.shared.queued.fetch_add(1, Ordering::AcqRel);
        permit.send(Message::Event(Pending::new(event, Some(tx))));
        match rx.await {
            Ok(Ok(receipt)) => Ok(receipt),
            Ok(Err(e)) => Err(Error::Delivery(e)),
            Err(_) => Err(Error::Closed),
        }
    }

    /// Waits until every event recorded before the call is settled: acknowledged by the server,
    /// or refused or given up (and reported). Sends a partial batch at once.
    pub async fn flush(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Message::Flush(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Sends everything queued, then stops the background task; every handle's `record` fails
    /// from then on. Returns when the task has stopped, with the final counts. Waits as long as
    /// delivery takes (retries included: bound it with `tokio::time::timeout` if need be). Safe
    /// to call more than once, from any handle.
    pub async fn shutdown(&self) -> Result<Stats, Error> {
        self.inner
            .shared
            .shutting_down
            .store(true, Ordering::Release);
        // Fails only if the queue is closed already: another shutdown got there first.
        let _ = self.inner.tx.send(Message::Shutdown).await;
        let mut stopped = self.inner.stopped.clone();
        stopped
            .wait_for(|stopped| *stopped)
            .await
            .map_err(|_| Error::Closed)?;
        Ok(self.stats())
    }

    /// How many events are queued, delivered, not recorded (recording off), failed, and how
    /// many retries were made, since the client was built.
    pub fn stats(&self) -> Stats {
        let s = &self.inner.shared;
        Stats {
            queued: s.queued.load(Ordering::Acquire),
            delivered: s.delivered.load(Ordering::Acquire),
            not_recorded: s.not_recorded.load(Ordering::Acquire),
            failed: s.failed.load(Ordering::Acquire),
            retries: s.retries.load(Ordering::Acquire),
        }
    }
}

/// The client's counts; see [`Client::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Recorded and not yet settled (in the queue or being sent).
    pub queued: u64,
    /// Stored by the server (a replay of an earlier request counts: it was stored then).
    pub delivered: u64,
    /// Accepted while the organization has recording turned off: not stored (a `202`).
    pub not_recorded: u64,
    /// Refused, or given up after the retries.
    pub failed: u64,
    /// Requests sent again.
    pub retries: u64,
}

/// The server's answer for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Stored: the entry's id and its organization's sequence number. To a platform key the
    /// answer also names the organization.
    Stored {
        id: String,
        seq: u64,
        organization_id: Option<String>,
    },
    /// Accepted but not stored: the organization has recording turned off.
    NotRecorded { organization_id: Option<String> },
}

/// An event that will not be stored, as [`ClientBuilder::on_failure`] gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEvent {
    pub action: String,
    pub organization: Option<String>,
    pub idempotency_key: String,
    /// The event's JSON as it was sent (`POST /v1/events` takes it as it is, so it can be kept
    /// and sent again; its idempotency key makes that safe).
    pub json: String,
    pub error: DeliveryError,
}

/// Why an event was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The server refused it (a 4xx other than 408 and 429). `details` are the server's, for
    /// this event: the field and what is wrong with it.
    #[error("refused by the server ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        details: Vec<ErrorDetail>,
    },
    /// Every attempt failed (network errors, timeouts, 408, 429, 5xx).
    #[error("not delivered after {attempts} attempts; the last failure: {last}")]
    GaveUp { attempts: u32, last: String },
}

/// One problem the server named: the field (`actor.type`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    pub field: Option<String>,
    pub message: String,
}

/// What went wrong with a call of the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client was shut down (or its runtime stopped).
    #[error("the Stele client is shut down")]
    Closed,
    /// The builder's settings cannot work.
    #[error("invalid Stele client settings: {0}")]
    Config(String),
    /// The event was refused or given up ([`Client::record_and_wait`]).
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

/// [`Client::try_record`] could not enqueue; the event is given back.
#[derive(Debug, thiserror::Error)]
pub enum TryRecordError {
    #[error("the Stele client's queue is full ({capacity} events)")]
    Full { event: Box<Event>, capacity: usize },
    #[error("the Stele client is shut down")]
    Closed { event: Box<Event> },
}

impl TryRecordError {
    /// The event that was not enqueued.
    pub fn into_event(self) -> Event {
        match self {
            TryRecordError::Full { event, .. } | TryRecordError::Closed { event } => *event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_under_v1_of_the_base_url() {
        for (base, expected) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/events"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1/events"),
            ("http://h/audit", "http://h/audit/v1/events"),
            ("http://h/audit/?x=1", "http://h/audit/v1/events"),
        ] {
            assert_eq!(endpoint(base).unwrap().as_str(), expected);
        }
        assert!(endpoint("ftp://h").is_err());
        assert!(endpoint("http://user:pw@h").is_err());
        assert!(endpoint("not a url").is_err());
    }

    #[test]
    fn the_builder_never_shows_the_key() {
        let builder = Client::builder("http://h", "stele_secret_123");
        assert!(!format!("{builder:?}").contains("stele_secret_123"));
    }

    #[tokio::test]
    async fn settings_that_cannot_work_are_refused() {
        let build = |b: ClientBuilder| b.build().map(|_| ()).unwrap_err().to_string();
        assert!(build(Client::builder("http://h", "k").batch_size(1001)).contains("batch_size"));
        assert!(build(Client::builder("http://h", "k").batch_size(0)).contains("batch_size"));
        assert!(build(Client::builder("http://h", "k").queue_capacity(0)).contains("queue"));
        let bad_key = build(Client::builder("http://h", "stele_\nsecret"));
        assert!(
            bad_key.contains("API key") && !bad_key.contains("secret"),
            "{bad_key}"
        );
        assert!(build(Client::builder("http://h", "")).contains("API key"));
    }

    #[test]
    fn building_outside_a_runtime_is_an_error() {
        let err = Client::builder("http://h", "k").build().unwrap_err();
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }
}
