//! Sending batches to `POST /v1/events` of the target server, as any client does.
//!
//! A batch is all-or-nothing on the server: a refused event stores nothing of its request. So a
//! refusal naming events (`422 invalid_event`, `413 event_too_large`, each with `details[].index`)
//! is answered by sending the batch again without them (when they are to be skipped) or only the
//! events before the first of them (when the import is to stop there). A body over the server's
//! limit (`413 payload_too_large`) is split in two. The server being unreachable, overloaded
//! (`429`) or failing (`5xx`) is retried with the same body, and so the same idempotency keys,
//! after a growing pause.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// A request's body stays under this size (the server's default limit is 8 MiB).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The first pause before a retry; each next one is twice as long, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// One event on its way, with the row it came from.
pub struct Pending {
    pub at: String,
    pub ordinal: u64,
    pub cursor: Option<String>,
    /// The event's JSON.
    pub body: Vec<u8>,
}

/// What became of a batch: how many events the server stored (or had stored before: a replayed
/// key answers with its first receipt), and the rows it refused, with its reasons.
pub struct Outcome {
    pub sent: u64,
    pub refused: Vec<(Pending, String)>,
}

pub struct Sender {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    /// The server as messages and the state file name it: without any user or password.
    shown: String,
    api_key: String,
    org: Option<String>,
    tries: u32,
    /// Stop at the first refused event (rather than skip the refused ones).
    pub stop_at_refusal: bool,
}

/// The server's answer to one request.
enum Answer {
    Stored(u64),
    /// Events refused, by their index in the request, with the server's reasons.
    Refused(Vec<(usize, String)>),
    /// The body is over the server's limit.
    TooLarge,
}

impl Sender {
    pub fn new(
        url: &str,
        api_key: String,
        org: Option<String>,
        tries: u32,
    ) -> anyhow::Result<Sender> {
        let base = url.trim().trim_end_matches('/');
        let endpoint = reqwest::Url::parse(&format!("{base}/v1/events"))
            .with_context(|| format!("--url `{url}` is not a URL"))?;
        anyhow::ensure!(
            matches!(endpoint.scheme(), "http" | "https"),
            "--url `{}` is not an http:// or https:// URL",
            endpoint.scheme()
        );
        let mut shown = endpoint.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let shown = shown
            .as_str()
            .trim_end_matches("/v1/events")
            .trim_end_matches('/')
            .to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .context("making the HTTP client")?;
        Ok(Sender {
            client,
            endpoint,
            shown,
            api_key,
            org,
            tries: tries.max(1),
            stop_at_refusal: true,
        })
    }

    /// The target as the state file records it: the server, and the organization a platform key
    /// names.
    pub fn target(&self) -> String {
        match &self.org {
            Some(org) => format!("{} (organization {org})", self.shown),
            None => self.shown.clone(),
        }
    }

    /// Sends the batch (in as many requests as it takes) and says what became of each event.
    pub async fn send(&self, batch: Vec<Pending>) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome {
            sent: 0,
            refused: Vec::new(),
        };
        // Parts still to send, the next one last.
        let mut parts = vec![batch];
        while let Some(mut part) = parts.pop() {
            if part.is_empty() {
                continue;
            }
            match self.post(&part).await? {
                Answer::Stored(n) => outcome.sent += n,
                Answer::TooLarge if part.len() > 1 => {
                    let second = part.split_off(part.len() / 2);
                    parts.push(second);
                    parts.push(part);
                }
                Answer::TooLarge => {
                    let row = part.pop().expect("one event");
                    let why = format!(
                        "413 payload_too_large: the event ({} bytes) is larger than the server \
                         takes in one request",
                        row.body.len()
                    );
                    outcome.refused.push((row, why));
                    if self.stop_at_refusal {
                        return Ok(outcome);
                    }
                }
                Answer::Refused(problems) => {
                    let mut reasons: std::collections::BTreeMap<usize, Vec<String>> =
                        Default::default();
                    for (index, why) in problems {
                        reasons.entry(index).or_default().push(why);
                    }
                    let mut kept = Vec::with_capacity(part.len());
                    let mut refused = Vec::new();
                    for (i, row) in part.into_iter().enumerate() {
                        match reasons.remove(&i) {
                            Some(why) => refused.push((row, why.join("; "))),
                            None => kept.push(row),
                        }
                    }
                    anyhow::ensure!(
                        !refused.is_empty(),
                        "the server refused the batch, naming events it does not hold"
                    );
                    if self.stop_at_refusal {
                        // Only what precedes the first refused event is sent; the import stops
                        // there.
                        let first = refused.swap_remove(0);
                        let before: Vec<Pending> = kept
                            .into_iter()
                            .filter(|r| r.ordinal < first.0.ordinal)
                            .collect();
                        parts.clear();
                        if !before.is_empty() {
                            parts.push(before);
                        }
                        // The events before the refused one may themselves be refused: they
                        // were checked with it, so they are not, and are sent here.
                        while let Some(p) = parts.pop() {
                            match self.post(&p).await? {
                                Answer::Stored(n) => outcome.sent += n,
                                _ => anyhow::bail!(
                                    "the server refused the events before {} after accepting \
                                     them in a larger batch",
                                    first.0.at
                                ),
                            }
                        }
                        outcome.refused.push(first);
                        return Ok(outcome);
                    }
                    outcome.refused.extend(refused);
                    parts.push(kept);
                }
            }
        }
        Ok(outcome)
    }

    /// One request, tried again while the server cannot be reached or answers 408, 429 or 5xx.
    async fn post(&self, part: &[Pending]) -> anyhow::Result<Answer> {
        let mut body =
            Vec::with_capacity(part.iter().map(|p| p.body.len() + 1).sum::<usize>() + 16);
        body.extend_from_slice(b"{\"events\":[");
        for (i, p) in part.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&p.body);
        }
        body.extend_from_slice(b"]}");
        let body = bytes::Bytes::from(body);
        let mut pause = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            let mut request = self
                .client
                .post(self.endpoint.clone())
                .bearer_auth(&self.api_key)
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(org) = &self.org {
                request = request.header("stele-organization", org);
            }
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.text().await.unwrap_or_default();
                    match status {
                        201 => return self.stored(part.len(), &text),
                        202 => anyhow::bail!(
                            "the server accepted the events but stored none: {}",
                            server_message(&text)
                        ),
                        408 | 429 | 500 | 502 | 503 | 504 => {
                            if let Some(wait) = retry_after {
                                pause = wait.min(MAX_PAUSE);
                            }
                            format!("{status} {}", server_message(&text))
                        }
                        413 if error_code(&text) == "payload_too_large" => {
                            return Ok(Answer::TooLarge);
                        }
                        _ => {
                            let refused = refused_events(&text);
                            if !refused.is_empty() {
                                return Ok(Answer::Refused(refused));
                            }
                            anyhow::bail!(
                                "{} answered {status}: {}",
                                self.shown,
                                server_message(&text)
                            );
                        }
                    }
                }
                Err(e) => with_causes(&e),
            };
            if attempt >= self.tries {
                anyhow::bail!(
                    "{} did not take the batch in {attempt} tries; the last: {failure}",
                    self.shown
                );
            }
            eprintln!(
                "{}: {failure}; trying again in {:.1} s",
                self.shown,
                pause.as_secs_f64()
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
            attempt += 1;
        }
    }

    /// Reads the receipts of a 201: one per event, each stored (a platform key's receipts say
    /// `"recorded": false` for an organization with recording off, which stops the import).
    fn stored(&self, events: usize, text: &str) -> anyhow::Result<Answer> {
        let body: Value = serde_json::from_str(text)
            .with_context(|| format!("{} answered 201 with a body that is not JSON", self.shown))?;
        let receipts = body["events"]
            .as_array()
            .with_context(|| format!("{} answered 201 without receipts: {text}", self.shown))?;
        if let Some(r) = receipts
            .iter()
            .find(|r| r["recorded"] == Value::Bool(false))
        {
            anyhow::bail!(
                "recording is turned off for organization {}: the server accepted the events \
                 but stored none of those for it (GET /v1/settings shows `enabled`)",
                r["organization_id"].as_str().unwrap_or("?")
            );
        }
        anyhow::ensure!(
            receipts.len() == events,
            "{} answered {} receipts for {events} events",
            self.shown,
            receipts.len()
        );
        Ok(Answer::Stored(events as u64))
    }
}

/// `error.code` of an error answer.
fn error_code(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The server's words: `code: message`, or the body as it came (cut short).
fn server_message(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v["error"].is_object() => format!(
            "{}: {}",
            v["error"]["code"].as_str().unwrap_or("error"),
            v["error"]["message"].as_str().unwrap_or("")
        ),
        Ok(v) if v["message"].is_string() => v["message"].as_str().unwrap_or("").to_string(),
        _ => text.chars().take(300).collect(),
    }
}

/// The events an error answer names by index (`details[].index`), with `field: message`.
fn refused_events(text: &str) -> Vec<(usize, String)> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let code = v["error"]["code"].as_str().unwrap_or("error").to_string();
    v["error"]["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .filter_map(|d| {
                    let index = usize::try_from(d["index"].as_u64()?).ok()?;
                    let field = d["field"].as_str().unwrap_or("event");
                    let message = d["message"].as_str().unwrap_or("");
                    Some((index, format!("{code}: {field}: {message}")))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_events_are_read_from_the_details() {
        let text = r#"{"error": {"code": "invalid_event", "message": "2 of 3 events are invalid",
            "details": [{"index": 1, "field": "actor.type", "message": "must be one of …"},
                        {"index": 2, "field": "action", "message": "is required"}]}}"#;
        assert_eq!(
            refused_events(text),
            [
                (1, "invalid_event: actor.type: must be one of …".to_string()),
                (2, "invalid_event: action: is required".to_string())
            ]
        );
        assert!(
            refused_events(r#"{"error": {"code": "unauthorized", "message": "x"}}"#).is_empty()
        );
        assert_eq!(
            server_message(r#"{"error": {"code": "unauthorized", "message": "unknown key"}}"#),
            "unauthorized: unknown key"
        );
    }

    #[test]
    fn the_target_is_shown_without_credentials_and_only_http_or_https_is_taken() {
        let s = Sender::new("http://u:p@host:8080/", "k".into(), Some("acme".into()), 1).unwrap();
        assert_eq!(s.target(), "http://host:8080 (organization acme)");
        let s = Sender::new("https://audit.example.com", "k".into(), None, 1).unwrap();
        assert_eq!(s.target(), "https://audit.example.com");
        let e = Sender::new("ftp://audit.example.com", "k".into(), None, 1)
            .err()
            .unwrap();
        assert!(e.to_string().contains("not an http"), "{e}");
    }
}
