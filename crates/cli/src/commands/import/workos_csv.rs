//! A WorkOS Audit Logs CSV export (the file an export's `url` downloads, or the dashboard's
//! "Export CSV").
//!
//! WorkOS does not publish the file's column layout, so the columns are taken by their header,
//! in any order, as the fields of a WorkOS event written flat: each header is compared lowercased
//! with every run of other characters than letters and digits read as `_` (`Actor ID`,
//! `actor.id` and `actor_id` are one column). What maps where, the same way Stele's WorkOS door
//! maps an event sent to `POST /audit_logs/events` (docs/platforms.md, "Moving from WorkOS"):
//!
//! | column | event |
//! |---|---|
//! | `action` (required) | `detailed_action`; `action` is its general action (`user.signed_in` → `login`) |
//! | `occurred_at` (or `timestamp`, `date`; required) | `occurred_at`: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` read as UTC |
//! | `actor_id`, `actor_type` (required), `actor_name`, `actor_metadata` (a JSON object) | `actor`; a type other than Stele's five is filed under one (`service_account` → `api`, …) and kept as `metadata["actor.original_type"]` |
//! | `targets` (a JSON array of `{id, type, name, metadata}`) | the first is `entity`, the others `related_entities` |
//! | `target_id`, `target_type`, `target_name`, `target_metadata` | `entity`, for a file with one target a row |
//! | `context_location` (or `location`, `ip`) | `context.ip` when it is an IP address, else `context.location` |
//! | `context_user_agent` (or `user_agent`) | `context.user_agent` |
//! | `metadata` (a JSON object) | `metadata` |
//! | `id` (or `event_id`) | what identifies the row (its idempotency key) and `metadata.imported_from`; without one, the row's contents and how many identical rows came before it |
//! | any other column (`version`, `organization_id`, …) | `metadata["origin.<column>"]`, as the door keeps it in `origin` |
//!
//! Every event also gets `metadata["origin.protocol"] = "workos"`. Empty cells are absent values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use stele_server::compat::vocabulary;

use super::{IMPORTED_FROM, Problem, Resume, Row, Rows, row_key};

pub const KIND: &str = "workos-csv";

/// A column the mapping knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    Id,
    Action,
    OccurredAt,
    ActorId,
    ActorType,
    ActorName,
    ActorMetadata,
    Targets,
    TargetId,
    TargetType,
    TargetName,
    TargetMetadata,
    Location,
    UserAgent,
    Metadata,
    /// Kept as `metadata["origin.<name>"]`.
    Other,
}

fn column_of(name: &str) -> Column {
    match name {
        "id" | "event_id" => Column::Id,
        "action" => Column::Action,
        "occurred_at" | "timestamp" | "date" => Column::OccurredAt,
        "actor_id" => Column::ActorId,
        "actor_type" => Column::ActorType,
        "actor_name" => Column::ActorName,
        "actor_metadata" => Column::ActorMetadata,
        "targets" => Column::Targets,
        "target_id" => Column::TargetId,
        "target_type" => Column::TargetType,
        "target_name" => Column::TargetName,
        "target_metadata" => Column::TargetMetadata,
        "context_location" | "location" | "ip" => Column::Location,
        "context_user_agent" | "user_agent" => Column::UserAgent,
        "metadata" => Column::Metadata,
        _ => Column::Other,
    }
}

/// A header as the mapping compares it: lowercased, each run of characters other than letters
/// and digits one `_`, none at either end.
fn normalize(header: &str) -> String {
    let mut out = String::new();
    for c in header.trim_start_matches('\u{feff}').chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// The file's columns, read from its header.
#[derive(Debug, Clone)]
pub struct Columns {
    /// Per position: what it is and its normalized name.
    columns: Vec<(Column, String)>,
}

impl Columns {
    /// The columns of the file's header; a required one missing is an error naming it.
    pub fn of_file(path: &Path) -> anyhow::Result<Columns> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let headers = reader
            .headers()
            .with_context(|| format!("{}: reading the header row", path.display()))?;
        Columns::of_header(headers.iter()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    fn of_header<'a>(headers: impl Iterator<Item = &'a str>) -> anyhow::Result<Columns> {
        let columns: Vec<(Column, String)> = headers
            .map(|h| {
                let name = normalize(h);
                (column_of(&name), name)
            })
            .collect();
        for (required, name) in [
            (Column::Action, "action"),
            (Column::OccurredAt, "occurred_at"),
            (Column::ActorId, "actor_id"),
            (Column::ActorType, "actor_type"),
        ] {
            anyhow::ensure!(
                columns.iter().any(|(c, _)| *c == required),
                "the header row has no `{name}` column, which every WorkOS event has (the \
                 columns: {})",
                columns
                    .iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (i, (c, name)) in columns.iter().enumerate() {
            anyhow::ensure!(
                *c == Column::Other || !columns[..i].iter().any(|(d, _)| d == c),
                "the header row has two columns for `{name}`"
            );
            anyhow::ensure!(
                !name.is_empty(),
                "column {} of the header row has no name",
                i + 1
            );
        }
        Ok(Columns { columns })
    }
}

/// Maps one row (its cells in the header's order) onto an event; `place` names it in
/// `imported_from` when it has no id.
pub fn map_row(
    columns: &Columns,
    cells: &[&str],
    place: &str,
) -> Result<Map<String, Value>, Problem> {
    let mut cell: HashMap<Column, &str> = HashMap::new();
    let mut others = Map::new();
    for ((column, name), value) in columns.columns.iter().zip(cells) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if *column == Column::Other {
            others.insert(format!("origin.{name}"), Value::String(value.to_string()));
        } else {
            cell.insert(*column, value);
        }
    }
    let imported_from = cell.get(&Column::Id).copied().unwrap_or(place);
    event_of(&cell, others, imported_from)
}

fn event_of(
    cell: &HashMap<Column, &str>,
    others: Map<String, Value>,
    imported_from: &str,
) -> Result<Map<String, Value>, Problem> {
    let required = |column: Column, name: &str| {
        cell.get(&column)
            .copied()
            .ok_or_else(|| Problem::new(name, "is empty; every WorkOS event has one"))
    };
    let action = required(Column::Action, "action")?;
    let occurred_at = occurred_at(required(Column::OccurredAt, "occurred_at")?)?;
    let actor_type = required(Column::ActorType, "actor_type")?;
    let actor_id = required(Column::ActorId, "actor_id")?;
    let mut metadata = object(cell, Column::Metadata, "metadata")?.unwrap_or_default();
    for (k, v) in others {
        metadata.insert(k, v);
    }
    metadata.insert("origin.protocol".into(), json!("workos"));

    let kind = vocabulary::actor_type(actor_type);
    if kind.as_str() != actor_type {
        metadata.insert("actor.original_type".into(), json!(actor_type));
    }
    let mut actor = Map::new();
    actor.insert("type".into(), json!(kind.as_str()));
    actor.insert("id".into(), json!(actor_id));
    if let Some(name) = cell.get(&Column::ActorName) {
        actor.insert("name".into(), json!(name));
    }
    if let Some(m) = object(cell, Column::ActorMetadata, "actor_metadata")? {
        actor.insert("metadata".into(), Value::Object(m));
    }

    let mut targets: Vec<Value> = match cell.get(&Column::Targets) {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(targets)) => targets,
            Ok(_) => return Err(Problem::new("targets", "is not a JSON array")),
            Err(e) => return Err(Problem::new("targets", format!("is not JSON: {e}"))),
        },
        None => Vec::new(),
    };
    if let Some(kind) = cell.get(&Column::TargetType) {
        let mut target = Map::new();
        target.insert("type".into(), json!(kind));
        if let Some(id) = cell.get(&Column::TargetId) {
            target.insert("id".into(), json!(id));
        }
        if let Some(name) = cell.get(&Column::TargetName) {
            target.insert("name".into(), json!(name));
        }
        if let Some(m) = object(cell, Column::TargetMetadata, "target_metadata")? {
            target.insert("metadata".into(), Value::Object(m));
        }
        targets.insert(0, Value::Object(target));
    } else if cell.contains_key(&Column::TargetId) {
        return Err(Problem::new(
            "target_type",
            "is empty where `target_id` is not",
        ));
    }

    let mut context = Map::new();
    if let Some(location) = cell.get(&Column::Location) {
        match location.parse::<std::net::IpAddr>() {
            Ok(_) => context.insert("ip".into(), json!(location)),
            Err(_) => context.insert("location".into(), json!(location)),
        };
    }
    if let Some(agent) = cell.get(&Column::UserAgent) {
        context.insert("user_agent".into(), json!(agent));
    }

    metadata.insert(IMPORTED_FROM.into(), json!(imported_from));
    let mut event = Map::new();
    event.insert("occurred_at".into(), json!(occurred_at));
    event.insert("action".into(), json!(vocabulary::general_action(action)));
    event.insert("detailed_action".into(), json!(action));
    event.insert("actor".into(), Value::Object(actor));
    let mut targets = targets.into_iter();
    if let Some(first) = targets.next() {
        event.insert("entity".into(), first);
    }
    let related: Vec<Value> = targets.collect();
    if !related.is_empty() {
        event.insert("related_entities".into(), Value::Array(related));
    }
    if !context.is_empty() {
        event.insert("context".into(), Value::Object(context));
    }
    event.insert("metadata".into(), Value::Object(metadata));
    Ok(event)
}

/// A cell holding a JSON object, if the row has it.
fn object(
    cell: &HashMap<Column, &str>,
    column: Column,
    name: &str,
) -> Result<Option<Map<String, Value>>, Problem> {
    match cell.get(&column) {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(_) => Err(Problem::new(name, "is not a JSON object")),
            Err(e) => Err(Problem::new(name, format!("is not JSON: {e}"))),
        },
    }
}

/// `occurred_at` as RFC 3339 in UTC: RFC 3339 with any offset, or a date and time without one
/// (`2026-01-02 03:04:05.678`, `…T…`, an optional ` UTC`), read as UTC.
pub fn occurred_at(text: &str) -> Result<String, Problem> {
    let ms = occurred_ms(text).ok_or_else(|| {
        Problem::new(
            "occurred_at",
            format!("`{text}` is not a time (RFC 3339, such as 2026-01-02T03:04:05.678Z)"),
        )
    })?;
    Ok(stele_core::time::format_rfc3339(ms))
}

/// The milliseconds since the epoch of a time as a WorkOS CSV writes it, if it is one.
fn occurred_ms(text: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let bare = text.trim_end_matches(" UTC").trim_end_matches('Z');
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(bare, f).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

/// Reads the file on a thread of its own, skipping the `resume.rows_done` rows done.
pub fn read(path: PathBuf, columns: Columns, resume: Resume) -> Rows {
    let (tx, rx) = tokio::sync::mpsc::channel(2048);
    std::thread::spawn(move || {
        if let Err(e) = read_rows(&path, &columns, &resume, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

fn read_rows(
    path: &Path,
    columns: &Columns,
    resume: &Resume,
    tx: &tokio::sync::mpsc::Sender<anyhow::Result<Row>>,
) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    // Rows without an id are told apart by their contents and how many identical ones came
    // before them.
    let mut seen: HashMap<[u8; 32], u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    let mut ordinal = 0u64;
    let width = columns.columns.len();
    loop {
        let more = reader
            .read_record(&mut record)
            .with_context(|| format!("{}: reading row {}", path.display(), ordinal + 1))?;
        if !more {
            return Ok(());
        }
        ordinal += 1;
        let line = record.position().map_or(0, |p| p.line());
        let place = format!("row {ordinal} (line {line})");
        let cells: Vec<&str> = record.iter().collect();
        let id = columns
            .columns
            .iter()
            .zip(&cells)
            .find(|((c, _), v)| *c == Column::Id && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string());
        // The event's time orders the keys (a row without one: 0).
        let order = columns
            .columns
            .iter()
            .zip(&cells)
            .find(|((c, _), _)| *c == Column::OccurredAt)
            .and_then(|(_, v)| occurred_ms(v.trim()))
            .map_or(0, |ms| ms.max(0) as u64);
        let key = match &id {
            Some(id) => row_key(KIND, order, &format!("id\n{id}")),
            None => {
                let mut hash = Sha256::new();
                for c in &cells {
                    hash.update(c.as_bytes());
                    hash.update([0x1f]);
                }
                let digest: [u8; 32] = hash.finalize().into();
                let n = seen.entry(digest).or_insert(0);
                *n += 1;
                row_key(KIND, order, &format!("row\n{}\n{n}", hex::encode(digest)))
            }
        };
        resume.check_first(ordinal, &key)?;
        if ordinal <= resume.rows_done {
            continue;
        }
        let event = if cells.len() != width {
            Err(Problem::new(
                "row",
                format!("has {} cells where the header has {width}", cells.len()),
            ))
        } else {
            map_row(columns, &cells, &place)
        };
        let at = match &id {
            Some(id) => format!("{place} (event {id})"),
            None => place,
        };
        let row = Row {
            ordinal,
            at,
            cursor: None,
            key,
            event,
        };
        if tx.blocking_send(Ok(row)).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(header: &str) -> Columns {
        Columns::of_header(header.split(',')).unwrap()
    }

    #[test]
    fn headers_are_compared_loosely() {
        assert_eq!(normalize("\u{feff}Actor ID"), "actor_id");
        assert_eq!(normalize("actor.id"), "actor_id");
        assert_eq!(normalize(" Occurred At "), "occurred_at");
        assert_eq!(normalize("context.user_agent"), "context_user_agent");
    }

    #[test]
    fn a_row_becomes_the_event_the_workos_door_would_record() {
        let c = columns(
            "id,action,occurred_at,version,Actor ID,Actor Type,Actor Name,actor.metadata,targets,context.location,context.user_agent,metadata",
        );
        let cells = [
            "event_01",
            "user.signed_in",
            "2022-09-08T19:46:03.435+02:00",
            "1",
            "user_TF4C5938",
            "service_account",
            "Jon Smith",
            r#"{"role": "admin"}"#,
            r#"[{"id": "user_98432YHF", "type": "user", "name": "Jon Smith"}, {"id": "team_J8YASKA2", "type": "team"}]"#,
            "203.0.113.7",
            "Chrome/104.0.0",
            r#"{"extra": "data"}"#,
        ];
        assert_eq!(
            Value::Object(map_row(&c, &cells, "row 1").unwrap()),
            json!({"occurred_at": "2022-09-08T17:46:03.435Z", "action": "login",
                   "detailed_action": "user.signed_in",
                   "actor": {"type": "api", "id": "user_TF4C5938", "name": "Jon Smith",
                             "metadata": {"role": "admin"}},
                   "entity": {"id": "user_98432YHF", "type": "user", "name": "Jon Smith"},
                   "related_entities": [{"id": "team_J8YASKA2", "type": "team"}],
                   "context": {"ip": "203.0.113.7", "user_agent": "Chrome/104.0.0"},
                   "metadata": {"extra": "data", "origin.version": "1",
                                "origin.protocol": "workos",
                                "actor.original_type": "service_account",
                                "imported_from": "event_01"}})
        );
    }

    #[test]
    fn flat_target_columns_and_a_location_that_is_no_address() {
        let c = columns("action,occurred_at,actor_id,actor_type,target_type,target_id,location");
        let cells = [
            "document.updated",
            "2026-01-02 03:04:05",
            "u1",
            "user",
            "document",
            "d7",
            "New York, NY",
        ];
        let event = Value::Object(map_row(&c, &cells, "row 4 (line 5)").unwrap());
        assert_eq!(event["occurred_at"], "2026-01-02T03:04:05.000Z");
        assert_eq!(event["action"], "update");
        assert_eq!(event["entity"], json!({"type": "document", "id": "d7"}));
        assert_eq!(event["context"], json!({"location": "New York, NY"}));
        assert_eq!(event["metadata"]["imported_from"], "row 4 (line 5)");
        assert_eq!(event["metadata"].get("actor.original_type"), None);
    }

    #[test]
    fn bad_rows_and_headers_are_named() {
        let e = Columns::of_header("action,actor_id,actor_type".split(',')).unwrap_err();
        assert!(e.to_string().contains("no `occurred_at` column"), "{e}");
        let c = columns("action,occurred_at,actor_id,actor_type,metadata,targets");
        let problem = |cells: [&str; 6]| map_row(&c, &cells, "row 1").unwrap_err();
        let p = problem(["a.b", "yesterday", "u", "user", "", ""]);
        assert_eq!(p.field, "occurred_at");
        assert!(
            p.message.contains("`yesterday` is not a time"),
            "{}",
            p.message
        );
        assert_eq!(
            problem(["", "2026-01-02T00:00:00Z", "u", "user", "", ""]).field,
            "action"
        );
        assert_eq!(
            problem(["a.b", "2026-01-02T00:00:00Z", "u", "user", "[1]", ""]).field,
            "metadata"
        );
        assert_eq!(
            problem(["a.b", "2026-01-02T00:00:00Z", "u", "user", "", "{"]).field,
            "targets"
        );
    }

    #[test]
    fn rows_without_an_id_are_told_apart_by_content_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(
            &path,
            "action,occurred_at,actor_id,actor_type\n\
             a.created,2026-01-02T00:00:00Z,u,user\n\
             a.created,2026-01-02T00:00:00Z,u,user\n\
             a.deleted,2026-01-02T00:00:00Z,u,user,extra\n",
        )
        .unwrap();
        let mut rx = read(
            path.clone(),
            Columns::of_file(&path).unwrap(),
            Resume::default(),
        );
        let mut rows = Vec::new();
        while let Some(r) = rx.blocking_recv() {
            rows.push(r.unwrap());
        }
        assert_eq!(rows.len(), 3);
        assert_ne!(rows[0].key, rows[1].key);
        assert_eq!(rows[2].event.as_ref().unwrap_err().field, "row");
        assert_eq!(rows[1].at, "row 2 (line 3)");
    }
}
