//! A Stele export, as NDJSON (one entry a line) or JSON (`{"exported_at", "filters",
//! "entries": [...]}`, or a bare array of entries), read as it streams: an entry at a time,
//! whatever the file's size.
//!
//! Each entry becomes the event it was, for another organization or server:
//!
//! | entry | event |
//! |---|---|
//! | `occurred_at`, `action`, `channel`, `outcome`, `description`, `actor`, `entity`, `entity_ids`, `related_entities`, `context`, `changes` | the same field, as it is |
//! | `detailed_action` | the same, except that Stele's own (`stele.…`, which clients may not send) become `imported.stele.…` |
//! | `metadata` | the same, plus `imported_from`: the entry's `id` |
//! | `actor.original_type` (set by the WorkOS door) | `metadata["actor.original_type"]` |
//! | `origin` (set by the WorkOS and Retraced doors) | `metadata["origin.<key>"]`, one per key |
//! | `id`, `seq`, `recorded_at` | assigned anew by the target; the idempotency key is made of these three |
//! | `redactions` | left out: the redacted values are `[REDACTED]` in the entry itself |
//!
//! Any other field stops the import (or, with `--skip-invalid`, skips the entry) naming it: an
//! export of a later Stele with a field this one does not know is not imported without it.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{IMPORTED_FROM, Problem, Resume, Row, Rows, row_key};

pub const KIND: &str = "stele-export";

/// The metadata keys under which what the native API has no field for is kept.
const ORIGINAL_TYPE: &str = "actor.original_type";
const ORIGIN_PREFIX: &str = "origin.";
/// Stele's own detailed actions, which clients may not send, and the prefix they get instead.
const RESERVED: &str = "stele.";
const RENAMED: &str = "imported.stele.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Ndjson,
    Json,
}

/// Which format the file is in: a JSON document starts with `[` or with an object whose first
/// key is one of the document's (`exported_at`, `filters`, `entries`); an NDJSON line is an
/// entry, whose first key is `id`.
pub fn detect(path: &Path) -> anyhow::Result<Format> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(detect_bytes(&head))
}

fn detect_bytes(head: &[u8]) -> Format {
    let head = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
    let mut rest = head.iter().skip_while(|b| b.is_ascii_whitespace());
    match rest.next() {
        Some(b'[') => Format::Json,
        Some(b'{') => {
            let mut after = rest.skip_while(|b| b.is_ascii_whitespace());
            if after.next() != Some(&b'"') {
                return Format::Ndjson;
            }
            let key: Vec<u8> = after.take_while(|b| **b != b'"').copied().collect();
            match key.as_slice() {
                b"exported_at" | b"filters" | b"entries" => Format::Json,
                _ => Format::Ndjson,
            }
        }
        _ => Format::Ndjson,
    }
}

/// An entry mapped: its id (for messages), the idempotency key and the event.
pub struct Mapped {
    pub id: Option<String>,
    pub key: String,
    pub event: Result<Map<String, Value>, Problem>,
}

/// Maps one exported entry onto the event that records it again (the table above).
pub fn map_entry(entry: Value) -> Mapped {
    let Value::Object(entry) = entry else {
        return Mapped {
            id: None,
            key: String::new(),
            event: Err(Problem::new("entry", "is not a JSON object")),
        };
    };
    let id = entry.get("id").and_then(Value::as_str).map(str::to_string);
    let seq = entry.get("seq").and_then(Value::as_i64);
    let recorded_at = entry.get("recorded_at").and_then(Value::as_str);
    let key = match (&id, seq, recorded_at) {
        (Some(id), Some(seq), Some(at)) => {
            row_key(KIND, seq.max(0) as u64, &format!("{id}\n{seq}\n{at}"))
        }
        _ => String::new(),
    };
    let event = if key.is_empty() {
        let field = match (&id, seq) {
            (None, _) => "id",
            (_, None) => "seq",
            _ => "recorded_at",
        };
        Err(Problem::new(
            field,
            "is missing or not what an export holds (`id` and `recorded_at` strings, `seq` an integer)",
        ))
    } else {
        event_of(entry, id.as_deref().unwrap_or_default())
    };
    Mapped { id, key, event }
}

fn event_of(entry: Map<String, Value>, id: &str) -> Result<Map<String, Value>, Problem> {
    let mut event = Map::new();
    let mut metadata = Map::new();
    // What has no native field: kept in the metadata under its dotted name.
    let mut kept = Map::new();
    for (field, value) in entry {
        match field.as_str() {
            "id" | "seq" | "recorded_at" | "redactions" => {}
            "occurred_at" | "action" | "channel" | "outcome" => {
                event.insert(field, value);
            }
            "detailed_action" => match value {
                Value::Null => {}
                Value::String(s) => {
                    let renamed = match s.strip_prefix(RESERVED) {
                        Some(rest) => format!("{RENAMED}{rest}"),
                        None => s,
                    };
                    event.insert(field, Value::String(renamed));
                }
                other => {
                    event.insert(field, other);
                }
            },
            "description" | "entity" => {
                if !value.is_null() {
                    event.insert(field, value);
                }
            }
            "entity_ids" | "related_entities" | "changes" => {
                if !matches!(&value, Value::Array(a) if a.is_empty()) && !value.is_null() {
                    event.insert(field, value);
                }
            }
            "context" => {
                if !matches!(&value, Value::Object(o) if o.is_empty()) && !value.is_null() {
                    event.insert(field, value);
                }
            }
            "actor" => {
                let mut actor = value;
                if let Value::Object(a) = &mut actor
                    && let Some(t) = a.remove("original_type")
                    && !t.is_null()
                {
                    kept.insert(ORIGINAL_TYPE.into(), t);
                }
                event.insert(field, actor);
            }
            "metadata" => match value {
                Value::Object(m) => metadata = m,
                Value::Null => {}
                _ => return Err(Problem::new("metadata", "is not an object")),
            },
            "origin" => match value {
                Value::Object(o) => {
                    for (k, v) in o {
                        kept.insert(format!("{ORIGIN_PREFIX}{k}"), v);
                    }
                }
                Value::Null => {}
                _ => return Err(Problem::new("origin", "is not an object")),
            },
            _ => {
                return Err(Problem::new(
                    field,
                    "is not a field of a Stele export entry that this stele knows",
                ));
            }
        }
    }
    for (k, v) in kept {
        if metadata.contains_key(&k) {
            return Err(Problem::new(
                format!("metadata.{k}"),
                "is already in the metadata, where the import would keep the entry's own field of that name",
            ));
        }
        metadata.insert(k, v);
    }
    // An entry imported before names its own source; this import names the entry it reads.
    metadata.insert(IMPORTED_FROM.into(), Value::String(id.to_string()));
    event.insert("metadata".into(), Value::Object(metadata));
    Ok(event)
}

/// Reads the file on a thread of its own, mapping each entry after the `resume.rows_done`
/// skipped ones.
pub fn read(path: PathBuf, format: Format, resume: Resume) -> Rows {
    let (tx, rx) = tokio::sync::mpsc::channel(2048);
    std::thread::spawn(move || {
        let result = match format {
            Format::Ndjson => read_ndjson(&path, &resume, &tx),
            Format::Json => read_json(&path, &resume, &tx),
        };
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

type Tx = tokio::sync::mpsc::Sender<anyhow::Result<Row>>;

/// The row of one entry; `false` once the import has stopped listening.
fn hand_over(
    tx: &Tx,
    resume: &Resume,
    ordinal: u64,
    place: String,
    entry: Result<Value, Problem>,
) -> anyhow::Result<bool> {
    let skipped = ordinal <= resume.rows_done;
    if skipped && ordinal != 1 {
        return Ok(true);
    }
    let (id, key, event) = match entry {
        Ok(value) => {
            let m = map_entry(value);
            (m.id, m.key, m.event)
        }
        Err(problem) => (None, String::new(), Err(problem)),
    };
    resume.check_first(ordinal, &key)?;
    if skipped {
        return Ok(true);
    }
    let at = match id {
        Some(id) => format!("{place} (entry {id})"),
        None => place,
    };
    let row = Row {
        ordinal,
        at,
        cursor: None,
        key,
        event,
    };
    Ok(tx.blocking_send(Ok(row)).is_ok())
}

fn read_ndjson(path: &Path, resume: &Resume, tx: &Tx) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let (mut line, mut number, mut ordinal) = (String::new(), 0u64, 0u64);
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("reading {} after line {number}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.trim_end_matches(['\n', '\r']);
        let text = if number == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        if text.trim().is_empty() {
            continue;
        }
        ordinal += 1;
        let entry = if ordinal <= resume.rows_done && ordinal != 1 {
            Ok(Value::Null)
        } else {
            serde_json::from_str::<Value>(text)
                .map_err(|e| Problem::new("line", format!("is not a JSON entry: {e}")))
        };
        if !hand_over(tx, resume, ordinal, format!("line {number}"), entry)? {
            return Ok(());
        }
    }
}

fn read_json(path: &Path, resume: &Resume, tx: &Tx) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    // A byte-order mark is not JSON; skip one if it is there.
    if reader.fill_buf()?.starts_with("\u{feff}".as_bytes()) {
        reader.consume(3);
    }
    let mut ordinal = 0u64;
    // Set when reading stops on purpose: the import stopped listening, or a row says this is
    // not the file the state file was written for (`failure`).
    let mut stopped = false;
    let mut failure: Option<anyhow::Error> = None;
    let mut each = |value: Value| -> Result<(), String> {
        ordinal += 1;
        match hand_over(tx, resume, ordinal, format!("entry {ordinal}"), Ok(value)) {
            Ok(true) => Ok(()),
            Ok(false) => {
                stopped = true;
                Err("stopped".into())
            }
            Err(e) => {
                failure = Some(e);
                stopped = true;
                Err("stopped".into())
            }
        }
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = Document { each: &mut each }.deserialize(&mut de);
    if let Some(e) = failure {
        return Err(e);
    }
    if stopped {
        return Ok(());
    }
    match parsed {
        Ok(()) => de.end().with_context(|| {
            format!(
                "{}: text after the end of the JSON document",
                path.display()
            )
        }),
        Err(e) => Err(anyhow::anyhow!(
            "{}: not a Stele JSON export: {e}",
            path.display()
        )),
    }
}

/// The export document (an object whose `entries` are handed over one by one, its other keys
/// skipped) or a bare array of entries.
struct Document<'a> {
    each: &'a mut dyn FnMut(Value) -> Result<(), String>,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Stele JSON export (an object with `entries`) or an array of entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            (self.each)(value).map_err(A::Error::custom)?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut entries = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                map.next_value_seed(Document {
                    each: &mut *self.each,
                })?;
                entries = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if entries {
            Ok(())
        } else {
            Err(A::Error::custom("the document has no `entries`"))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry() -> Value {
        json!({"id": "01a20098-2011-7173-bda2-1f466a792f3f", "seq": 7,
               "occurred_at": "2026-01-02T02:04:05.678Z", "recorded_at": "2026-01-02T02:04:06.000Z",
               "action": "update", "detailed_action": "printer.rename", "channel": "hardware",
               "description": "Renamed printer Alpha", "outcome": "success",
               "actor": {"type": "user", "id": "u1", "name": "Ada", "email": "ada@example.com"},
               "entity": {"type": "Printer", "id": "42", "name": "Alpha"}, "entity_ids": [],
               "context": {"ip": "203.0.113.7", "correlation_id": "req-1"},
               "changes": [{"field": "name", "old": "A", "new": "Alpha"}],
               "metadata": {"site": "Berlin"}})
    }

    #[test]
    fn an_entry_becomes_its_event_with_imported_from() {
        let m = map_entry(entry());
        assert_eq!(
            m.id.as_deref(),
            Some("01a20098-2011-7173-bda2-1f466a792f3f")
        );
        assert_eq!(
            m.key,
            row_key(
                KIND,
                7,
                "01a20098-2011-7173-bda2-1f466a792f3f\n7\n2026-01-02T02:04:06.000Z"
            )
        );
        assert_eq!(
            Value::Object(m.event.unwrap()),
            json!({"occurred_at": "2026-01-02T02:04:05.678Z", "action": "update",
                   "detailed_action": "printer.rename", "channel": "hardware",
                   "description": "Renamed printer Alpha", "outcome": "success",
                   "actor": {"type": "user", "id": "u1", "name": "Ada", "email": "ada@example.com"},
                   "entity": {"type": "Printer", "id": "42", "name": "Alpha"},
                   "context": {"ip": "203.0.113.7", "correlation_id": "req-1"},
                   "changes": [{"field": "name", "old": "A", "new": "Alpha"}],
                   "metadata": {"site": "Berlin",
                                "imported_from": "01a20098-2011-7173-bda2-1f466a792f3f"}})
        );
    }

    #[test]
    fn what_the_native_api_refuses_is_kept_in_the_metadata() {
        let mut e = entry();
        e["actor"]["original_type"] = json!("service_account");
        e["origin"] = json!({"protocol": "workos", "version": 2});
        e["detailed_action"] = json!("stele.redaction");
        e["redactions"] = json!([{"fields": ["metadata.site"]}]);
        let event = Value::Object(map_entry(e).event.unwrap());
        assert_eq!(event["detailed_action"], "imported.stele.redaction");
        assert_eq!(event["actor"].get("original_type"), None);
        assert_eq!(event["metadata"]["actor.original_type"], "service_account");
        assert_eq!(event["metadata"]["origin.protocol"], "workos");
        assert_eq!(event["metadata"]["origin.version"], 2);
        assert_eq!(event.get("redactions"), None);
    }

    #[test]
    fn bad_entries_are_named_by_field() {
        let mut e = entry();
        e["colour"] = json!("red");
        assert_eq!(map_entry(e).event.unwrap_err().field, "colour");
        let mut e = entry();
        e.as_object_mut().unwrap().remove("seq");
        let m = map_entry(e);
        assert_eq!(
            (m.key.as_str(), m.event.unwrap_err().field.as_str()),
            ("", "seq")
        );
        let mut e = entry();
        e["metadata"] = json!(["a"]);
        assert_eq!(map_entry(e).event.unwrap_err().field, "metadata");
        assert_eq!(map_entry(json!([1])).event.unwrap_err().field, "entry");
    }

    #[test]
    fn the_format_is_read_from_the_start_of_the_file() {
        assert_eq!(
            detect_bytes(b"{\"exported_at\":\"x\",\"entries\":[]}"),
            Format::Json
        );
        assert_eq!(detect_bytes(b"\xef\xbb\xbf  [ {\"id\": 1} ]"), Format::Json);
        assert_eq!(
            detect_bytes(b"{\"id\":\"01a2\",\"seq\":1}\n{\"id\""),
            Format::Ndjson
        );
        assert_eq!(detect_bytes(b""), Format::Ndjson);
    }

    fn rows_of(text: &str, format: Format, resume: Resume) -> Vec<anyhow::Result<Row>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export");
        std::fs::write(&path, text).unwrap();
        let mut rx = read(path, format, resume);
        let mut rows = Vec::new();
        while let Some(r) = rx.blocking_recv() {
            rows.push(r);
        }
        rows
    }

    #[test]
    fn both_formats_stream_the_same_rows_and_skip_what_a_resume_says() {
        let mut second = entry();
        second["id"] = json!("01a20098-2011-7173-bda2-1f466a792f40");
        second["seq"] = json!(8);
        let ndjson = format!("{}\n\n{}\n", entry(), second);
        let doc = json!({"exported_at": "x", "filters": {"actor_type": "all"},
                         "entries": [entry(), second]})
        .to_string();
        for (text, format, place) in [
            (ndjson.as_str(), Format::Ndjson, "line 3"),
            (doc.as_str(), Format::Json, "entry 2"),
        ] {
            let rows = rows_of(text, format, Resume::default());
            assert_eq!(rows.len(), 2);
            let second = rows[1].as_ref().unwrap();
            assert_eq!(second.ordinal, 2);
            assert!(second.at.starts_with(place), "{}", second.at);
            let first_key = rows[0].as_ref().unwrap().key.clone();
            let resumed = rows_of(
                text,
                format,
                Resume {
                    rows_done: 1,
                    cursor: None,
                    first_key: Some(first_key),
                },
            );
            assert_eq!(resumed.len(), 1);
            assert_eq!(resumed[0].as_ref().unwrap().ordinal, 2);
            // Another file where the state recorded this one.
            let other = rows_of(
                text,
                format,
                Resume {
                    rows_done: 1,
                    cursor: None,
                    first_key: Some("import:other".into()),
                },
            );
            assert!(other[0].as_ref().is_err());
        }
    }

    #[test]
    fn a_line_that_is_not_json_is_a_row_problem_and_a_broken_document_an_error() {
        let rows = rows_of(
            &format!("{}\nnot json\n", entry()),
            Format::Ndjson,
            Resume::default(),
        );
        let bad = rows[1].as_ref().unwrap();
        assert_eq!(bad.at, "line 2");
        assert_eq!(bad.event.as_ref().unwrap_err().field, "line");
        let rows = rows_of(
            "{\"exported_at\": \"x\", \"entries\": [1, ",
            Format::Json,
            Resume::default(),
        );
        assert!(rows.last().unwrap().is_err());
        let rows = rows_of("{\"exported_at\": \"x\"}", Format::Json, Resume::default());
        let e = rows.last().unwrap().as_ref().err().unwrap().to_string();
        assert!(e.contains("no `entries`"), "{e}");
    }
}
