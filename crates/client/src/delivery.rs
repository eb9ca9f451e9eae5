//! The background task: takes events off the queue in batches and sends each batch to
//! `POST /v1/events` until the server has answered for every event in it.
//!
//! **No duplicates.** Every event carries its own `idempotency_key`, made once when it was
//! recorded; every request carries an `Idempotency-Key` made once for its batch, and a retry
//! sends the very same bytes with the same key. So a request whose answer was lost (a timeout, a
//! server killed after its commit) is sent again and the server answers with the receipts it
//! gave the first time, storing nothing twice; and a batch formed anew (the rest of a batch
//! after the server refused some of its events) still stores each event once, by the events'
//! keys. Both last the server's idempotency window (at least 24 hours).
//!
//! **Order.** One request at a time, batches in queue order: a trail holds the events in the
//! order they were recorded. While a batch is retried the queue waits (and fills: see
//! `record`'s back-pressure).
//!
//! **What is retried.** Network errors and timeouts, 408, 429 and 5xx answers, and a success
//! whose body cannot be read (sending it again replays the receipts). A 429 or 503 with
//! `Retry-After` is waited for that long. Any other 4xx is the request's fault and sending it
//! again would not help: when the server names the events at fault (`invalid_event`,
//! `event_too_large`, each by its index), those are reported and the others sent again; when a
//! batch is too large as a whole (`payload_too_large`), it is halved; otherwise the whole batch is
//! reported.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::client::{
    DeliveryError, ErrorDetail, FailedEvent, FailureHandler, Message, Pending, Receipt, Shared,
};

/// The longest `Retry-After` honoured; a longer one is taken as this (a server asking for hours
/// is more likely misconfigured than meaning it).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) batch_size: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) max_retries: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_size: 500,
            max_batch_bytes: 4 << 20,
            flush_interval: Duration::from_secs(1),
            max_retries: 10,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
        }
    }
}

pub(crate) struct Worker {
    pub(crate) rx: mpsc::Receiver<Message>,
    pub(crate) http: reqwest::Client,
    pub(crate) endpoint: reqwest::Url,
    pub(crate) settings: Settings,
    pub(crate) shared: Arc<Shared>,
    pub(crate) on_failure: Option<FailureHandler>,
    /// Set once the task has sent everything and stopped.
    pub(crate) stopped: watch::Sender<bool>,
}

/// What one request came to.
enum Answer {
    /// Stored (or replayed): one receipt per event, in order.
    Receipts(Vec<Receipt>),
    /// Worth sending again, after `after` if the server said.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The server refused the request; sending it again would not help.
    Refused(Refusal),
}

struct Refusal {
    status: u16,
    code: String,
    message: String,
    details: Vec<Detail>,
}

/// The error body every Stele error has: `{"error": {"code", "message", "details"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Deserialize, Clone)]
struct Detail {
    index: Option<usize>,
    field: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl From<Detail> for ErrorDetail {
    fn from(d: Detail) -> ErrorDetail {
        ErrorDetail {
            field: d.field,
            message: d.message.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct ReceiptsBody {
    events: Vec<ReceiptBody>,
}

#[derive(Deserialize)]
struct ReceiptBody {
    id: Option<String>,
    seq: Option<u64>,
    organization_id: Option<String>,
    recorded: Option<bool>,
}

impl Worker {
    pub(crate) async fn run(mut self) {
        let mut carried: Option<Pending> = None;
        loop {
            let first = match carried.take() {
                Some(pending) => Message::Event(pending),
                None => match self.rx.recv().await {
                    Some(message) => message,
                    None => break,
                },
            };
            let mut batch = Batch::default();
            let mut flushes = Vec::new();
            match first {
                Message::Event(pending) => batch.push(pending),
                // Everything before it is settled: the task sends one batch at a time.
                Message::Flush(done) => {
                    let _ = done.send(());
                    continue;
                }
                Message::Shutdown => {
                    // What is queued still comes out of `recv`; then it says the queue is done.
                    self.rx.close();
                    continue;
                }
            }
            let deadline = Instant::now() + self.settings.flush_interval;
            while batch.events.len() < self.settings.batch_size {
                let next = if batch.urgent {
                    // Send now, with whatever is already waiting.
                    match self.rx.try_recv() {
                        Ok(message) => Some(message),
                        Err(_) => break,
                    }
                } else {
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Ok(message) => message,
                        Err(_) => break,
                    }
                };
                match next {
                    None => break,
                    Some(Message::Event(pending)) => {
                        if batch.bytes + pending.json.len() + 1 > self.settings.max_batch_bytes {
                            carried = Some(pending);
                            break;
                        }
                        batch.push(pending);
                    }
                    Some(Message::Flush(done)) => {
                        flushes.push(done);
                        break;
                    }
                    Some(Message::Shutdown) => {
                        self.rx.close();
                        break;
                    }
                }
            }
            self.deliver(batch.events).await;
            for done in flushes {
                let _ = done.send(());
            }
        }
        let _ = self.stopped.send(true);
    }

    /// Sends these events until the server has answered for each one: a receipt, or a refusal.
    async fn deliver(&self, events: Vec<Pending>) {
        let mut batches = VecDeque::from([events]);
        while let Some(batch) = batches.pop_front() {
            if batch.is_empty() {
                continue;
            }
            let body = body_of(&batch);
            let key = uuid::Uuid::now_v7().to_string();
            let mut attempts: u32 = 0;
            loop {
                attempts += 1;
                match self.post(&body, &key, batch.len()).await {
                    Answer::Receipts(receipts) => {
                        self.acknowledge(batch, receipts);
                        break;
                    }
                    Answer::Retry { reason, after } => {
                        if attempts > self.settings.max_retries {
                            let error = DeliveryError::GaveUp {
                                attempts,
                                last: reason,
                            };
                            self.fail(batch.into_iter().map(|p| (p, error.clone())).collect());
                            break;
                        }
                        let wait = after.unwrap_or_else(|| self.backoff(attempts));
                        self.shared.retries.fetch_add(1, Ordering::AcqRel);
                        tracing::warn!(
                            events = batch.len(),
                            attempt = attempts,
                            retry_in_ms = wait.as_millis() as u64,
                            "stele: sending events failed ({reason}); sending them again"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    Answer::Refused(refusal) => {
                        self.settle_refusal(batch, refusal, &mut batches);
                        break;
                    }
                }
            }
        }
    }

    async fn post(&self, body: &str, key: &str, count: usize) -> Answer {
        let sent = self
            .http
            .post(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", key)
            .body(body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Answer::Retry {
                    reason: describe(&e),
                    after: None,
                };
            }
        };
        let status = response.status();
        let after = retry_after(response.headers());
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                return Answer::Retry {
                    reason: format!("{status}, and then reading the answer: {}", describe(&e)),
                    after,
                };
            }
        };
        match status.as_u16() {
            201 => match receipts(&bytes, count) {
                Some(receipts) => Answer::Receipts(receipts),
                None => Answer::Retry {
                    reason: "a 201 whose receipts could not be read".into(),
                    after: None,
                },
            },
            // Recording is off for the organization: accepted, not stored.
            202 => Answer::Receipts(
                (0..count)
                    .map(|_| Receipt::NotRecorded {
                        organization_id: None,
                    })
                    .collect(),
            ),
            408 | 429 | 500..=599 => Answer::Retry {
                reason: match serde_json::from_slice::<ErrorBody>(&bytes) {
                    Ok(b) => format!("{status}, {}: {}", b.error.code, b.error.message),
                    Err(_) => status.to_string(),
                },
                after,
            },
            _ => Answer::Refused(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => Refusal {
                    status: status.as_u16(),
                    code: b.error.code,
                    message: b.error.message,
                    details: b.error.details,
                },
                Err(_) => Refusal {
                    status: status.as_u16(),
                    code: "unexpected_answer".into(),
                    message: format!(
                        "{status} from {} (is the URL that of a Stele server?)",
                        self.endpoint
                    ),
                    details: vec![],
                },
            }),
        }
    }

    /// A refused batch: report the events at fault and send the others again, or halve a batch
    /// too large as a whole, or else report them all.
    fn settle_refusal(
        &self,
        mut batch: Vec<Pending>,
        refusal: Refusal,
        batches: &mut VecDeque<Vec<Pending>>,
    ) {
        if refusal.status == 413 && refusal.code == "payload_too_large" && batch.len() > 1 {
            let second = batch.split_off(batch.len() / 2);
            batches.push_front(second);
            batches.push_front(batch);
            return;
        }
        let per_event = matches!(refusal.code.as_str(), "invalid_event" | "event_too_large");
        let mut by_event: BTreeMap<usize, Vec<Detail>> = BTreeMap::new();
        let mut unplaced = false;
        for detail in &refusal.details {
            match detail.index {
                Some(i) if i < batch.len() => by_event.entry(i).or_default().push(detail.clone()),
                _ => unplaced = true,
            }
        }
        if per_event && !by_event.is_empty() && !unplaced {
            let mut failed = Vec::new();
            let mut rest = Vec::new();
            for (i, pending) in batch.into_iter().enumerate() {
                match by_event.remove(&i) {
                    Some(details) => {
                        let message = details
                            .iter()
                            .map(|d| match &d.field {
                                Some(f) => format!("{f}: {}", d.message.as_deref().unwrap_or("")),
                                None => d.message.clone().unwrap_or_default(),
                            })
                            .collect::<Vec<_>>()
                            .join("; ");
                        let error = DeliveryError::Refused {
                            status: refusal.status,
                            code: refusal.code.clone(),
                            message,
                            details: details.into_iter().map(ErrorDetail::from).collect(),
                        };
                        failed.push((pending, error));
                    }
                    None => rest.push(pending),
                }
            }
            self.fail(failed);
            // Nothing of the request was stored: the others go again, as a batch of their own
            // (with a new request key; each keeps its event key).
            if !rest.is_empty() {
                batches.push_front(rest);
            }
            return;
        }
        let error = DeliveryError::Refused {
            status: refusal.status,
            code: refusal.code,
            message: refusal.message,
            details: refusal.details.into_iter().map(ErrorDetail::from).collect(),
        };
        self.fail(batch.into_iter().map(|p| (p, error.clone())).collect());
    }

    fn acknowledge(&self, batch: Vec<Pending>, receipts: Vec<Receipt>) {
        for (pending, receipt) in batch.into_iter().zip(receipts) {
            let counter = match receipt {
                Receipt::Stored { .. } => &self.shared.delivered,
                Receipt::NotRecorded { .. } => &self.shared.not_recorded,
            };
            counter.fetch_add(1, Ordering::AcqRel);
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            if let Some(reply) = pending.reply {
                let _ = reply.send(Ok(receipt));
            }
        }
    }

    fn fail(&self, failed: Vec<(Pending, DeliveryError)>) {
        if failed.is_empty() {
            return;
        }
        if self.on_failure.is_none() {
            // One line per cause, never the events' content (it may hold personal data).
            let mut causes: BTreeMap<String, usize> = BTreeMap::new();
            for (_, error) in &failed {
                *causes.entry(error.to_string()).or_default() += 1;
            }
            for (cause, events) in causes {
                tracing::error!(events, "stele: events not stored: {cause}");
            }
        }
        for (pending, error) in failed {
            self.shared.failed.fetch_add(1, Ordering::AcqRel);
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            if let Some(reply) = pending.reply {
                let _ = reply.send(Err(error.clone()));
            }
            if let Some(handler) = &self.on_failure {
                handler(FailedEvent {
                    action: pending.action,
                    organization: pending.organization,
                    idempotency_key: pending.key,
                    json: pending.json,
                    error,
                });
            }
        }
    }

    /// The wait before retry number `attempt` (1 for the first): doubling from the initial
    /// backoff up to the longest, then drawn between half of it and all of it.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .settings
            .initial_backoff
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
        let full = doubled.min(self.settings.max_backoff);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[derive(Default)]
struct Batch {
    events: Vec<Pending>,
    /// The request body's size so far (the events and their commas).
    bytes: usize,
    /// Someone waits for a receipt: send without waiting for the interval.
    urgent: bool,
}

impl Batch {
    fn push(&mut self, pending: Pending) {
        self.bytes += pending.json.len() + 1;
        self.urgent |= pending.reply.is_some();
        self.events.push(pending);
    }
}

/// `{"events":[…]}` from the events' JSON, made when they were recorded.
fn body_of(batch: &[Pending]) -> String {
    let mut body =
        String::with_capacity(16 + batch.iter().map(|p| p.json.len() + 1).sum::<usize>());
    body.push_str("{\"events\":[");
    for (i, pending) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&pending.json);
    }
    body.push_str("]}");
    body
}

/// One receipt per event, in order, or `None` if the answer does not say that.
fn receipts(body: &[u8], count: usize) -> Option<Vec<Receipt>> {
    let parsed: ReceiptsBody = serde_json::from_slice(body).ok()?;
    if parsed.events.len() != count {
        return None;
    }
    parsed
        .events
        .into_iter()
        .map(|r| match (r.id, r.seq, r.recorded) {
            (_, _, Some(false)) => Some(Receipt::NotRecorded {
                organization_id: r.organization_id,
            }),
            (Some(id), Some(seq), _) => Some(Receipt::Stored {
                id,
                seq,
                organization_id: r.organization_id,
            }),
            _ => None,
        })
        .collect()
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A transport error with its causes (`error sending request: … : Connection refused`).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker_settings(initial_ms: u64, max_ms: u64) -> Settings {
        Settings {
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            ..Settings::default()
        }
    }

    fn pending(json: &str) -> Pending {
        Pending {
            json: json.into(),
            key: "k".into(),
            action: "a".into(),
            organization: None,
            reply: None,
        }
    }

    #[test]
    fn the_body_is_a_batch_of_the_events_json() {
        let body = body_of(&[pending(r#"{"action":"a"}"#), pending(r#"{"action":"b"}"#)]);
        assert_eq!(body, r#"{"events":[{"action":"a"},{"action":"b"}]}"#);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["events"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn receipts_are_read_in_order_and_must_match_the_batch() {
        let body = br#"{"events":[{"id":"a","seq":1},{"id":"b","seq":2,"organization_id":"org_1"},
            {"organization_id":"org_2","recorded":false}]}"#;
        assert_eq!(
            receipts(body, 3).unwrap(),
            [
                Receipt::Stored {
                    id: "a".into(),
                    seq: 1,
                    organization_id: None
                },
                Receipt::Stored {
                    id: "b".into(),
                    seq: 2,
                    organization_id: Some("org_1".into())
                },
                Receipt::NotRecorded {
                    organization_id: Some("org_2".into())
                },
            ]
        );
        assert_eq!(receipts(body, 2), None, "one receipt per event");
        assert_eq!(receipts(br#"{"events":[{"seq":1}]}"#, 1), None);
        assert_eq!(receipts(b"<html>", 1), None);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_bounded() {
        let headers = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::RETRY_AFTER, v.parse().unwrap());
            h
        };
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("86400")), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO),
            "a date past is no wait"
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = retry_after(&headers(&soon)).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&http::HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn backoff_doubles_up_to_the_longest_with_jitter_in_the_upper_half() {
        let (_tx, rx) = mpsc::channel(1);
        let worker = Worker {
            rx,
            http: reqwest::Client::new(),
            endpoint: "http://h/v1/events".parse().unwrap(),
            settings: worker_settings(100, 1000),
            shared: Arc::default(),
            on_failure: None,
            stopped: watch::channel(false).0,
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            for _ in 0..50 {
                let wait = worker.backoff(attempt).as_millis() as u64;
                assert!(
                    (full / 2..=full).contains(&wait),
                    "attempt {attempt}: {wait} ms not in {}..={full}",
                    full / 2
                );
            }
        }
    }

    /// The answers the Stele server gives that a test cannot make it give at will (a 429, a
    /// 503 that lasts): a peer that reads each request and writes the next scripted answer, one
    /// connection per request. What it checks is the client's side of the exchange.
    mod scripted {
        use std::sync::Mutex;
        use std::time::Instant;

        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpListener;

        use crate::{Actor, Client, DeliveryError, Event};

        use super::*;

        struct Request {
            at: Instant,
            idempotency_key: String,
            body: String,
        }

        fn answer(status: &str, headers: &str, body: &str) -> String {
            format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }

        fn error(code: &str) -> String {
            format!(r#"{{"error":{{"code":"{code}","message":"scripted","details":[]}}}}"#)
        }

        /// Serves `answers` in turn; returns its URL and the requests it read.
        async fn peer(answers: Vec<String>) -> (String, Arc<Mutex<Vec<Request>>>) {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = seen.clone();
            tokio::spawn(async move {
                for answer in answers {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 8192];
                    let (head, body) = loop {
                        let n = socket.read(&mut buf).await.unwrap();
                        assert!(n > 0, "the request ended early");
                        raw.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&raw).to_string();
                        let Some((head, body)) = text.split_once("\r\n\r\n") else {
                            continue;
                        };
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break (head.to_string(), body.to_string());
                        }
                    };
                    let idempotency_key = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("idempotency-key")
                                .then(|| value.trim().to_string())
                        })
                        .unwrap_or_default();
                    log.lock().unwrap().push(Request {
                        at: Instant::now(),
                        idempotency_key,
                        body,
                    });
                    socket.write_all(answer.as_bytes()).await.unwrap();
                    let _ = socket.shutdown().await;
                }
            });
            (url, seen)
        }

        fn event(n: u64) -> Event {
            Event::builder("login")
                .actor(Actor::user("u1"))
                .metadata("n", n)
                .build()
                .unwrap()
        }

        #[tokio::test]
        async fn a_429_is_sent_again_after_its_retry_after_with_the_same_body_and_key() {
            let receipts = r#"{"events":[{"id":"a","seq":1},{"id":"b","seq":2}]}"#;
            let (url, seen) = peer(vec![
                answer(
                    "429 Too Many Requests",
                    "Retry-After: 1\r\n",
                    &error("rate_limited"),
                ),
                answer("201 Created", "", receipts),
            ])
            .await;
            // A backoff far below the second the answer asks for.
            let client = Client::builder(url, "k")
                .batch_size(2)
                .backoff(Duration::from_millis(10), Duration::from_millis(10))
                .build()
                .unwrap();
            client.record(event(0)).await.unwrap();
            client.record(event(1)).await.unwrap();
            let stats = client.shutdown().await.unwrap();
            assert_eq!((stats.delivered, stats.retries, stats.failed), (2, 1, 0));
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 2);
            assert!(
                seen[1].at - seen[0].at >= Duration::from_millis(950),
                "waited {:?}",
                seen[1].at - seen[0].at
            );
            assert!(!seen[0].idempotency_key.is_empty());
            assert_eq!(seen[1].idempotency_key, seen[0].idempotency_key);
            assert_eq!(seen[1].body, seen[0].body, "the very same batch");
            let sent: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
            let keys: Vec<&str> = sent["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["idempotency_key"].as_str().unwrap())
                .collect();
            assert_eq!(keys.len(), 2);
            assert_ne!(keys[0], keys[1], "each event has its own key");
        }

        #[tokio::test]
        async fn a_lasting_503_is_given_up_after_the_retries_and_reported() {
            let (url, seen) = peer(vec![
                answer(
                    "503 Service Unavailable",
                    "",
                    &error("unavailable")
                );
                3
            ])
            .await;
            let reported = Arc::new(Mutex::new(Vec::new()));
            let failures = reported.clone();
            let client = Client::builder(url, "k")
                .max_retries(2)
                .backoff(Duration::from_millis(1), Duration::from_millis(5))
                .on_failure(move |f| failures.lock().unwrap().push(f))
                .build()
                .unwrap();
            let result = client.record_and_wait(event(0)).await;
            assert!(
                matches!(
                    &result,
                    Err(crate::Error::Delivery(DeliveryError::GaveUp { attempts: 3, last }))
                        if last.contains("503") && last.contains("unavailable")
                ),
                "{result:?}"
            );
            assert_eq!(
                seen.lock().unwrap().len(),
                3,
                "the first try and two retries"
            );
            let reported = reported.lock().unwrap().clone();
            assert_eq!(reported.len(), 1);
            assert!(reported[0].json.contains(r#""n":0"#));
            let stats = client.shutdown().await.unwrap();
            assert_eq!((stats.failed, stats.retries, stats.queued), (1, 2, 0));
        }

        #[tokio::test]
        async fn a_refusal_that_names_no_event_is_not_sent_again() {
            let (url, seen) =
                peer(vec![answer("401 Unauthorized", "", &error("unauthorized"))]).await;
            let client = Client::builder(url, "k").build().unwrap();
            let result = client.record_and_wait(event(0)).await;
            assert!(
                matches!(
                    &result,
                    Err(crate::Error::Delivery(DeliveryError::Refused { status: 401, code, .. }))
                        if code == "unauthorized"
                ),
                "{result:?}"
            );
            let stats = client.shutdown().await.unwrap();
            assert_eq!(seen.lock().unwrap().len(), 1);
            assert_eq!((stats.failed, stats.retries), (1, 0));
        }
    }
}
