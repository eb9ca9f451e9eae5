//! What a webhook stream's POST carries: Stele's own envelope (`native`), or the request body a
//! SIEM's intake API takes as it is, so that a stream can post straight to it:
//!
//! | format | receiver | body |
//! |---|---|---|
//! | `native` | any (Standard Webhooks) | `{"type": "audit_log.entries", "timestamp", "data": {"stream_id", "organization_id", "entries": [...]}}` |
//! | `splunk_hec` | Splunk's HTTP Event Collector (`/services/collector/event`) | one `{"time", "host", "source": "stele", "sourcetype": "stele:audit", "event": entry}` per entry, newline-separated |
//! | `elastic_bulk` | Elasticsearch's or OpenSearch's `_bulk` (`/<index>/_bulk`) | NDJSON: `{"create": {"_id": entry id}}` then the entry with `@timestamp`, per entry |
//! | `datadog` | Datadog's log intake (`/api/v2/logs`) | a JSON array of `{"ddsource": "stele", "service": "stele", "hostname", "ddtags", "date", "status", "message", "audit": entry}` |
//!
//! The entry is always the native record (`super::native_record`), so its `id` stays the key a
//! receiver de-duplicates by; Elasticsearch does it itself, since `create` with the entry's id
//! refuses a second copy (`409`, which counts as delivered). The receiver's token goes in the
//! stream's `transport.headers` (`Authorization: Splunk …`, `DD-API-KEY: …`).

use serde_json::{Map, Value, json};
use stele_core::Outcome as EventOutcome;
use stele_core::time::{Millis, format_rfc3339};

use super::Outcome;

/// A webhook stream's payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Native,
    SplunkHec,
    ElasticBulk,
    Datadog,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Native,
        Format::SplunkHec,
        Format::ElasticBulk,
        Format::Datadog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::SplunkHec => "splunk_hec",
            Format::ElasticBulk => "elastic_bulk",
            Format::Datadog => "datadog",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The names, for a refusal: "native, splunk_hec, elastic_bulk or datadog".
    pub fn names() -> String {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        format!(
            "{} or {}",
            names[..names.len() - 1].join(", "),
            names[names.len() - 1]
        )
    }
}

/// One POST's body and its `Content-Type`.
pub struct Payload {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// What a batch holds, for its payload.
pub struct Records<'a> {
    pub stream_id: &'a str,
    /// The organization whose entries these are; `None` for a platform-wide stream, whose
    /// batches hold several organizations' entries (each entry names its own).
    pub org_id: Option<&'a str>,
    /// This server's name (Splunk's `host`, Datadog's `hostname`).
    pub hostname: &'a str,
    /// The native records, in `seq` order.
    pub records: &'a [Value],
    /// Each record's entry's occurrence and outcome.
    pub entries: &'a [(Millis, EventOutcome)],
    /// When the batch is sent (the native envelope's `timestamp`).
    pub now: Millis,
}

/// The body of one POST of `records` in `format`.
pub fn payload(format: Format, batch: &Records<'_>) -> Payload {
    let pairs = batch.records.iter().zip(batch.entries);
    let json_body = |value: Value| serde_json::to_vec(&value).expect("JSON serializes");
    match format {
        Format::Native => Payload {
            content_type: "application/json",
            body: json_body(json!({
                "type": "audit_log.entries",
                "timestamp": format_rfc3339(batch.now),
                "data": {
                    "stream_id": batch.stream_id,
                    "organization_id": batch.org_id,
                    "entries": batch.records,
                },
            })),
        },
        Format::SplunkHec => {
            let mut body = Vec::new();
            for (record, (occurred_at, _)) in pairs {
                if !body.is_empty() {
                    body.push(b'\n');
                }
                let event = json!({
                    // Seconds since the epoch, with the milliseconds as decimals.
                    "time": *occurred_at as f64 / 1000.0,
                    "host": batch.hostname,
                    "source": "stele",
                    "sourcetype": "stele:audit",
                    "event": record,
                });
                serde_json::to_writer(&mut body, &event).expect("JSON serializes");
            }
            Payload {
                content_type: "application/json",
                body,
            }
        }
        Format::ElasticBulk => {
            let mut body = Vec::new();
            for (record, (occurred_at, _)) in pairs {
                let action = json!({"create": {"_id": record["id"]}});
                serde_json::to_writer(&mut body, &action).expect("JSON serializes");
                body.push(b'\n');
                let mut document = Map::new();
                // The time field Kibana and data streams expect.
                document.insert("@timestamp".into(), json!(format_rfc3339(*occurred_at)));
                if let Value::Object(fields) = record {
                    document.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                serde_json::to_writer(&mut body, &document).expect("JSON serializes");
                body.push(b'\n');
            }
            Payload {
                content_type: "application/x-ndjson",
                body,
            }
        }
        Format::Datadog => {
            let logs: Vec<Value> = pairs
                .map(|(record, (occurred_at, outcome))| {
                    let channel = record["channel"].as_str().unwrap_or_default();
                    let org_id = record["organization_id"].as_str().unwrap_or_default();
                    let message = record["description"]
                        .as_str()
                        .or_else(|| record["action"].as_str())
                        .unwrap_or_default();
                    json!({
                        "ddsource": "stele",
                        "service": "stele",
                        "hostname": batch.hostname,
                        "ddtags": format!(
                            "organization_id:{},channel:{}",
                            datadog_tag(org_id),
                            datadog_tag(channel)
                        ),
                        "date": format_rfc3339(*occurred_at),
                        "status": match outcome {
                            EventOutcome::Success => "info",
                            EventOutcome::Failure => "warn",
                        },
                        "message": message,
                        "audit": record,
                    })
                })
                .collect();
            Payload {
                content_type: "application/json",
                body: json_body(Value::Array(logs)),
            }
        }
    }
}

/// A tag value as Datadog keeps it: lowercase letters, digits and `_ - . /`; anything else
/// becomes `_`.
fn datadog_tag(value: &str) -> String {
    value
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What a `2xx` answer of Elasticsearch's `_bulk` means: it answers `200` even when items
/// failed, with `"errors": true` and each item's own status; any other `2xx` is a taken batch. An item already there (`409`, the
/// same entry id) counts as delivered; `429` and `5xx` items make the whole batch retried (its
/// delivered items then answer `409`); any other failure refuses the batch, with the first
/// such item's reason.
pub fn elastic_outcome(answer: &[u8]) -> Outcome {
    // A `2xx` is a taken batch unless the answer says otherwise (a proxy in front of the
    // cluster may answer `204` with no body at all).
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return Outcome::Delivered;
    };
    if answer["errors"] != Value::Bool(true) {
        return Outcome::Delivered;
    }
    let mut retry = None;
    for item in answer["items"].as_array().into_iter().flatten() {
        let Some(result) = item.as_object().and_then(|o| o.values().next()) else {
            continue;
        };
        let status = result["status"].as_u64().unwrap_or(0);
        let reason = || {
            let error = &result["error"];
            format!(
                "Elasticsearch answered {status} for entry {}: {}: {}",
                result["_id"].as_str().unwrap_or("?"),
                error["type"].as_str().unwrap_or("error"),
                error["reason"].as_str().unwrap_or("no reason given")
            )
        };
        match status {
            200..=299 | 409 => {}
            429 | 500..=599 => {
                retry.get_or_insert_with(reason);
            }
            _ => return Outcome::Refused(reason()),
        }
    }
    match retry {
        Some(error) => Outcome::Retry { error, after: None },
        None => Outcome::Delivered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch<'a>(records: &'a [Value], entries: &'a [(Millis, EventOutcome)]) -> Records<'a> {
        Records {
            stream_id: "str_1",
            org_id: Some("org_A"),
            hostname: "stele-1",
            records,
            entries,
            now: 1_700_000_001_000,
        }
    }

    fn records() -> (Vec<Value>, Vec<(Millis, EventOutcome)>) {
        (
            vec![
                json!({"organization_id": "org_A", "id": "e1", "seq": 1, "action": "sign_in",
                       "channel": "Security Ops", "description": "Ada signed in"}),
                json!({"organization_id": "org_A", "id": "e2", "seq": 2, "action": "export",
                       "channel": "default"}),
            ],
            vec![
                (1_700_000_000_123, EventOutcome::Success),
                (1_700_000_000_456, EventOutcome::Failure),
            ],
        )
    }

    #[test]
    fn splunk_gets_one_event_per_entry_with_its_time_in_seconds() {
        let (records, entries) = records();
        let payload = payload(Format::SplunkHec, &batch(&records, &entries));
        let text = String::from_utf8(payload.body).unwrap();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["time"], json!(1_700_000_000.123));
        assert_eq!(events[0]["sourcetype"], "stele:audit");
        assert_eq!(events[1]["event"], records[1]);
    }

    #[test]
    fn elastic_gets_a_create_per_entry_keyed_by_its_id() {
        let (records, entries) = records();
        let payload = payload(Format::ElasticBulk, &batch(&records, &entries));
        assert_eq!(payload.content_type, "application/x-ndjson");
        let text = String::from_utf8(payload.body).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0], json!({"create": {"_id": "e1"}}));
        assert_eq!(lines[1]["@timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(lines[1]["seq"], 1);
        assert_eq!(lines[2], json!({"create": {"_id": "e2"}}));
    }

    #[test]
    fn datadog_gets_an_array_of_logs_tagged_by_organization_and_channel() {
        let (records, entries) = records();
        let payload = payload(Format::Datadog, &batch(&records, &entries));
        let logs: Value = serde_json::from_slice(&payload.body).unwrap();
        assert_eq!(
            logs[0]["ddtags"],
            "organization_id:org_a,channel:security_ops"
        );
        assert_eq!(logs[0]["message"], "Ada signed in");
        assert_eq!(logs[1]["message"], "export");
        assert_eq!(logs[1]["status"], "warn");
        assert_eq!(logs[1]["audit"], records[1]);
    }

    #[test]
    fn elastic_answers_are_judged_item_by_item() {
        let ok = br#"{"errors": false, "items": [{"create": {"status": 201}}]}"#;
        assert_eq!(elastic_outcome(ok), Outcome::Delivered);
        let again = br#"{"errors": true, "items": [{"create": {"_id": "e1", "status": 409,
            "error": {"type": "version_conflict_engine_exception"}}}]}"#;
        assert_eq!(elastic_outcome(again), Outcome::Delivered);
        let busy = br#"{"errors": true, "items": [{"create": {"status": 201}},
            {"create": {"_id": "e2", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}]}"#;
        assert!(
            matches!(elastic_outcome(busy), Outcome::Retry { error, .. } if error.contains("queue full"))
        );
        let mapping = br#"{"errors": true, "items": [{"create": {"_id": "e2", "status": 400,
            "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [seq]"}}}]}"#;
        assert!(
            matches!(elastic_outcome(mapping), Outcome::Refused(r) if r.contains("mapper_parsing_exception") && r.contains("e2"))
        );
        assert_eq!(elastic_outcome(b""), Outcome::Delivered);
    }
}
