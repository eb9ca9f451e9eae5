//! Exporting the trail as CSV, JSON or NDJSON: parameters, encoding, the paging walk and the
//! export's own audit entry. `GET /v1/export` and `stele export` both use this module, so a file
//! made either way has the same bytes (apart from the time it was made).
//!
//! Memory stays flat whatever the size: the store is walked with its keyset cursor one page of
//! [`PAGE_SIZE`] stored rows at a time ([`RowPage`], unparsed), and each page is encoded into one
//! chunk and handed to a [`Sink`] while the next page is read, so at most two pages are held.

pub mod jobs;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use stele_core::Entry;
use stele_core::event::{Actor, Context, NewEvent, Outcome};
use stele_core::filter::{EventFilter, FilterError};
use stele_core::params::{FILTER_PARAMETERS, PageRequest};
use stele_core::time::{Millis, format_rfc3339};
use stele_store::record::{CorruptRow, entry_id_into};
use stele_store::rows::{FlatEntry, RowPage};
use stele_store::{OrgKey, Receipt, Store, StoreError};

use crate::clock::Clock;
use crate::erasure::{RedactionNote, redactions_by_entry};

/// Redactions by the id of the entry they redacted (only rewritten entries have any).
pub type PageRedactions = HashMap<String, Vec<RedactionNote>>;

/// The redactions the export's pages show, read once, on the first page that holds a rewritten
/// entry (an export without one never reads them).
#[derive(Default)]
struct ExportRedactions {
    by_entry: Option<Arc<PageRedactions>>,
}

impl ExportRedactions {
    async fn for_page(
        &mut self,
        store: &dyn Store,
        org: OrgKey,
        page: &RowPage,
    ) -> Result<Arc<PageRedactions>, StoreError> {
        if self.by_entry.is_none() && page.iter().any(|row| row.erased) {
            self.by_entry = Some(Arc::new(redactions_by_entry(store, org).await?));
        }
        Ok(self.by_entry.clone().unwrap_or_default())
    }
}

/// Entries read from the store per page (and encoded per chunk): about 0.5 MB of stored text.
pub const PAGE_SIZE: usize = 1000;

/// The detailed action of the entry that records an export.
pub const EXPORT_DETAILED_ACTION: &str = "audit_log.export";

/// The channel of the entry that records an export: pulling the log is compliance evidence, like
/// an erasure.
pub const EXPORT_CHANNEL: &str = "compliance";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Ndjson,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "ndjson" => Some(Format::Ndjson),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

/// What to export: the format and the same filter `GET /v1/events` would apply.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub format: Format,
    pub filter: EventFilter,
    /// The filter parameters as given (non-empty ones), plus the effective `actor_type`, so a
    /// reader of the file (or of the export's entry) sees that System actors were left out.
    pub filters: Map<String, Value>,
    /// Which of the filter's matches to keep, for a door whose search has terms no store filter
    /// holds (the Retraced viewer's saved exports); `None` keeps them all.
    pub pick: Option<Pick>,
}

/// A test an export applies to each entry its filter selected (see [`ExportRequest::pick`]).
#[derive(Clone)]
pub struct Pick(pub Arc<dyn Fn(&Entry) -> bool + Send + Sync>);

impl std::fmt::Debug for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pick(..)")
    }
}

impl ExportRequest {
    /// Reads `format` (default `csv`) and every filter of the list, parsed by
    /// [`PageRequest::from_params`] so they mean exactly what they mean there. `limit` and
    /// `cursor` are ignored: an export always holds every match, and ignoring them lets a list
    /// URL's query string be reused as it is.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ExportRequest, FilterError> {
        let params: Vec<(&str, &str)> = params
            .into_iter()
            .filter(|(k, _)| *k != "limit" && *k != "cursor")
            .collect();
        let mut format = Format::Csv;
        let mut filters = Map::new();
        for (key, value) in &params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if *key == "format" {
                format = Format::parse(value).ok_or_else(|| {
                    FilterError::new("format", "must be `csv`, `json` or `ndjson`")
                })?;
            } else if FILTER_PARAMETERS.contains(key) {
                filters.insert((*key).to_string(), Value::String(value.to_string()));
            }
        }
        let request = PageRequest::from_params(params.iter().copied())?;
        let actor_types = request
            .filter
            .actor_types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        filters.insert("actor_type".into(), Value::String(actor_types));
        Ok(ExportRequest {
            format,
            filter: request.filter,
            filters,
            pick: None,
        })
    }
}

/// `audit-log-20261122T031500Z.csv`: the download's file name, named by the moment it was made.
pub fn file_name(format: Format, exported_at: Millis) -> String {
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(exported_at)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ");
    format!("audit-log-{at}.{}", format.as_str())
}

/// The CSV columns, in order (docs/api.md lists them).
pub const CSV_HEADER: [&str; 29] = [
    "id",
    "seq",
    "occurred_at",
    "channel",
    "action",
    "detailed_action",
    "description",
    "outcome",
    "actor_type",
    "actor_id",
    "actor_name",
    "actor_email",
    "entity_type",
    "entity_id",
    "entity_name",
    "entity_ids",
    "ip",
    "user_agent",
    "correlation_id",
    "changes",
    "metadata",
    // The fields added to the model later, after the original columns so that a reader of the
    // first 21 columns finds them where they always were.
    "actor_href",
    "actor_metadata",
    "actor_original_type",
    "entity_href",
    "entity_metadata",
    "related_entities",
    "origin",
    // Which fields were redacted after the fact, when and why (JSON, as `GET /v1/events/{id}`
    // answers them; empty for an entry never redacted).
    "redactions",
];

/// The UTF-8 byte-order mark, so that Excel reads accented names as UTF-8 (seed 004).
const BOM: &str = "\u{feff}";

/// Guards a CSV cell against formula injection: a spreadsheet treats a cell starting with `=`,
/// `+`, `-` or `@` (and, in some, tab, carriage return, line feed or `|`) as a formula, and
/// some skip leading spaces (a non-breaking one too) or read the fullwidth forms `＝ ＋ － ＠` as
/// the ASCII ones. Such a cell gets a leading `'` and is shown as text (the OWASP "CSV injection"
/// recommendation, widened to what spreadsheets actually accept).
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    let starts_a_formula = |c: char| {
        matches!(
            c,
            '=' | '+' | '-' | '@' | '|' | '\t' | '\r' | '\n' | '＝' | '＋' | '－' | '＠'
        )
    };
    let first_visible = cell.chars().find(|c| !matches!(c, ' ' | '\u{a0}'));
    match (cell.chars().next(), first_visible) {
        (Some(first), _) if starts_a_formula(first) => Cow::Owned(format!("'{cell}")),
        (Some(' ' | '\u{a0}'), Some(c)) if starts_a_formula(c) => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Turns entries into the bytes of one format, chunk by chunk: [`Encoder::begin`] once, then
/// [`Encoder::page`] per page, then [`Encoder::end`].
pub struct Encoder {
    format: Format,
    exported_at: Millis,
    filters: Map<String, Value>,
    pick: Option<Pick>,
    /// Whether an entry was written yet (JSON puts commas between entries).
    any: bool,
    /// Entries written so far.
    written: u64,
}

impl Encoder {
    pub fn new(request: &ExportRequest, exported_at: Millis) -> Encoder {
        Encoder {
            format: request.format,
            exported_at,
            filters: request.filters.clone(),
            pick: request.pick.clone(),
            any: false,
            written: 0,
        }
    }

    pub fn begin(&mut self) -> Vec<u8> {
        match self.format {
            Format::Csv => {
                let mut out = BOM.as_bytes().to_vec();
                let mut w = CsvRows::new(&mut out);
                for cell in CSV_HEADER {
                    w.cell(cell);
                }
                w.end_row();
                w.finish();
                out
            }
            Format::Json => {
                // The prefix of the document, without its closing `}`: entries follow.
                let head = json!({
                    "exported_at": format_rfc3339(self.exported_at),
                    "filters": self.filters,
                });
                let mut text = head.to_string();
                text.pop();
                text.push_str(",\"entries\":[");
                text.into_bytes()
            }
            Format::Ndjson => vec![],
        }
    }

    /// One page's bytes. CSV reads each row's cells straight from the stored JSON; JSON and
    /// NDJSON build each entry as the API returns it, with its `redactions` where it has some. A
    /// stored row that does not parse stops the export as a store failure would.
    pub fn page(
        &mut self,
        rows: &RowPage,
        redactions: &PageRedactions,
    ) -> Result<Vec<u8>, StoreError> {
        let corrupt = |e: CorruptRow| StoreError::Other(e.to_string());
        let mut out = Vec::with_capacity(rows.len() * 512);
        // With a pick, each row is parsed whole to be tested (the flat cells are not an entry).
        let mut kept = Vec::with_capacity(rows.len());
        for row in rows.iter() {
            let keep = match &self.pick {
                Some(Pick(pick)) => pick(&row.entry().map_err(corrupt)?),
                None => true,
            };
            if keep {
                kept.push(row);
            }
        }
        self.written += kept.len() as u64;
        match self.format {
            Format::Csv => {
                let mut w = CsvRows::new(&mut out);
                for row in &kept {
                    w.row(&row.flat().map_err(corrupt)?, redactions);
                }
                w.finish();
            }
            Format::Json => {
                for row in &kept {
                    if self.any {
                        out.push(b',');
                    }
                    self.any = true;
                    write_entry(&mut out, &row.entry().map_err(corrupt)?, redactions);
                }
            }
            Format::Ndjson => {
                for row in &kept {
                    write_entry(&mut out, &row.entry().map_err(corrupt)?, redactions);
                    out.push(b'\n');
                }
            }
        }
        Ok(out)
    }

    pub fn end(&mut self) -> Vec<u8> {
        match self.format {
            Format::Json => b"]}\n".to_vec(),
            Format::Csv | Format::Ndjson => vec![],
        }
    }
}

/// One entry as the API returns it, with `redactions` (as `GET /v1/events/{id}` has them) when
/// some of its fields were redacted after the fact.
fn write_entry(out: &mut Vec<u8>, entry: &Entry, redactions: &PageRedactions) {
    match redactions.get(&entry.id) {
        None => serde_json::to_writer(out, entry).expect("JSON into memory"),
        Some(notes) => {
            let mut json = entry.to_json();
            json["redactions"] = serde_json::to_value(notes).expect("JSON into memory");
            serde_json::to_writer(out, &json).expect("JSON into memory");
        }
    }
}

/// Writes CSV rows into a buffer: RFC 4180 line ends, quotes only where needed (commas, quotes,
/// line breaks), every cell [`neutralise`]d.
struct CsvRows<'o> {
    writer: csv::Writer<&'o mut Vec<u8>>,
}

impl<'o> CsvRows<'o> {
    fn new(out: &'o mut Vec<u8>) -> CsvRows<'o> {
        CsvRows {
            writer: csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(out),
        }
    }

    // Writing to memory cannot fail, and every row has the header's width.
    fn cell(&mut self, text: &str) {
        self.writer
            .write_field(neutralise(text).as_bytes())
            .expect("CSV into memory");
    }

    fn end_row(&mut self) {
        self.writer
            .write_record(None::<&[u8]>)
            .expect("CSV into memory");
    }

    /// Moves what the writer buffered into the output.
    fn finish(mut self) {
        self.writer.flush().expect("CSV into memory");
    }

    /// One entry's row: cells in [`CSV_HEADER`] order, empty values as empty cells;
    /// `entity_ids`, `changes`, `related_entities`, `origin` and the metadata maps as JSON text
    /// (so ids holding `;` or `,` stay unambiguous), empty cells when there are none.
    fn row(&mut self, e: &FlatEntry<'_>, redactions: &PageRedactions) {
        fn opt<'v>(v: &'v Option<Cow<'_, str>>) -> &'v str {
            v.as_deref().unwrap_or_default()
        }
        let mut id = [0; 36];
        let id = entry_id_into(e.pk, &mut id);
        self.cell(id);
        self.cell(&e.seq.to_string());
        self.cell(&format_rfc3339(e.occurred_at));
        self.cell(e.channel);
        self.cell(e.action);
        self.cell(e.detailed_action.unwrap_or_default());
        self.cell(e.description.unwrap_or_default());
        self.cell(e.outcome.as_str());
        self.cell(e.actor_type.as_str());
        self.cell(opt(&e.actor_id));
        self.cell(opt(&e.actor_name));
        self.cell(opt(&e.actor_email));
        self.cell(e.entity_type.unwrap_or_default());
        self.cell(opt(&e.entity_id));
        self.cell(opt(&e.entity_name));
        self.cell(e.entity_ids);
        self.cell(opt(&e.ip));
        self.cell(opt(&e.user_agent));
        self.cell(e.correlation_id.unwrap_or_default());
        self.cell(e.changes);
        self.cell(e.metadata);
        self.cell(opt(&e.actor_href));
        self.cell(e.actor_metadata);
        self.cell(opt(&e.actor_original_type));
        self.cell(opt(&e.entity_href));
        self.cell(e.entity_metadata);
        self.cell(e.related_entities);
        self.cell(e.origin);
        match redactions.get(id) {
            Some(notes) => self.cell(&serde_json::to_string(notes).expect("JSON into memory")),
            None => self.cell(""),
        }
        self.end_row();
    }
}

/// Walks every entry matching a filter, newest first, one page at a time with the keyset cursor
/// (so entries recorded meanwhile never shift it: each match is read once).
pub struct Walk {
    request: PageRequest,
    done: bool,
}

impl Walk {
    pub fn new(filter: EventFilter) -> Walk {
        Walk {
            request: PageRequest {
                filter,
                limit: PAGE_SIZE,
                cursor: None,
            },
            done: false,
        }
    }

    /// The next page, `None` once every match was read.
    pub async fn next_page(
        &mut self,
        store: &dyn Store,
        org: OrgKey,
    ) -> Result<Option<RowPage>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = store.list_rows(org, &self.request).await?;
        match page.next_cursor {
            Some(cursor) => self.request.cursor = Some(cursor),
            None => self.done = true,
        }
        Ok(Some(page))
    }
}

/// Where the encoded chunks go: an HTTP response body or a file.
pub trait Sink {
    /// Hands one chunk on; false when the reader has gone (the client disconnected).
    fn send(&mut self, chunk: Vec<u8>) -> impl std::future::Future<Output = bool> + Send;
}

/// How an export went.
#[derive(Debug)]
pub struct Summary {
    /// Entries handed to the sink.
    pub entries: u64,
    /// False when the reader went away or the store failed before the end.
    pub complete: bool,
    /// Why the store stopped the export early, if it did.
    pub error: Option<StoreError>,
}

/// Encodes `first` (the walk's first page, read by the caller so that a store failure before any
/// byte is sent can still be answered as an error) and every further page into the sink.
async fn pump(
    store: &dyn Store,
    org: OrgKey,
    walk: &mut Walk,
    first: RowPage,
    mut encoder: Encoder,
    sink: &mut impl Sink,
) -> Summary {
    let mut summary = Summary {
        entries: 0,
        complete: false,
        error: None,
    };
    let mut head = encoder.begin();
    let mut page = first;
    let mut redactions_seen = ExportRedactions::default();
    loop {
        // The next page is read while this one is encoded (on a blocking thread, not this task's,
        // so a store whose reads run on this task, like PostgreSQL's driver, keeps reading) and
        // sent.
        let mut chunk = std::mem::take(&mut head);
        let redactions = match redactions_seen.for_page(store, org, &page).await {
            Ok(found) => found,
            Err(e) => {
                summary.error = Some(e);
                return summary;
            }
        };
        let mut moved = encoder;
        let encoding = tokio::task::spawn_blocking(move || {
            let bytes = moved.page(&page, &redactions);
            (moved, bytes)
        });
        let (next, sent) = tokio::join!(walk.next_page(store, org), async {
            let (returned, bytes) = encoding
                .await
                .map_err(|e| StoreError::Other(format!("the export's encoder failed: {e}")))?;
            chunk.extend(bytes?);
            Ok((returned, sink.send(chunk).await))
        });
        match sent {
            Ok((returned, true)) => {
                summary.entries = returned.written;
                encoder = returned;
            }
            Ok((_, false)) => return summary,
            Err(e) => {
                summary.error = Some(e);
                return summary;
            }
        }
        match next {
            Ok(Some(next)) => page = next,
            Ok(None) => break,
            Err(e) => {
                summary.error = Some(e);
                return summary;
            }
        }
    }
    let end = encoder.end();
    if !end.is_empty() && !sink.send(end).await {
        return summary;
    }
    summary.complete = true;
    summary
}

/// Who exported, as the export's own entry names them: an API key, a signed-in member, or the
/// operator at the command line.
pub struct Exporter {
    pub actor: Actor,
    pub context: Context,
}

/// An export under way, whatever door started it (`GET /v1/export`, the console's download,
/// `stele export`, an export job): [`Export::start`] reads the first page, then [`Export::run`]
/// (or, for a job, [`Export::write`] and [`record`]) writes it all and records it.
pub struct Export {
    org: OrgKey,
    request: ExportRequest,
    walk: Walk,
    first: RowPage,
    exported_at: Millis,
}

impl Export {
    /// Begins an export by reading its first page now, so that a store that is unavailable is
    /// still an error the door can answer (a 503 JSON error, an exit status) rather than a
    /// download that breaks off at its first byte. `exported_at` is the time the file states.
    pub async fn start(
        store: &dyn Store,
        org: OrgKey,
        request: ExportRequest,
        exported_at: Millis,
    ) -> Result<Export, StoreError> {
        let mut walk = Walk::new(request.filter.clone());
        let first = walk.next_page(store, org).await?.unwrap_or_default();
        Ok(Export {
            org,
            request,
            walk,
            first,
            exported_at,
        })
    }

    pub fn request(&self) -> &ExportRequest {
        &self.request
    }

    pub fn exported_at(&self) -> Millis {
        self.exported_at
    }

    /// Writes every page into `sink`, then records the export in the organization's trail,
    /// complete or not: a reader who went away early still received what the entry counts, and
    /// an export the store broke off is recorded as incomplete. The entry is recorded before this
    /// returns, so a door can end its output only afterwards (a client that has the whole file
    /// finds its export in the trail).
    pub async fn run(
        self,
        store: &dyn Store,
        sink: &mut impl Sink,
        by: Exporter,
        clock: &dyn Clock,
    ) -> Exported {
        let (org, request) = (self.org, self.request.clone());
        let summary = self.write(store, sink).await;
        let event = export_record(by.actor, by.context, &request, &summary, clock.now());
        let recorded = crate::trail::record(store, org, event).await;
        Exported { summary, recorded }
    }

    /// Writes every page into `sink` without recording: for an export job, which records only
    /// a file that is complete and on disk ([`record_job`]).
    pub async fn write(mut self, store: &dyn Store, sink: &mut impl Sink) -> Summary {
        let encoder = Encoder::new(&self.request, self.exported_at);
        pump(store, self.org, &mut self.walk, self.first, encoder, sink).await
    }
}

/// How an export that [`Export::run`] wrote went, and its own entry.
pub struct Exported {
    pub summary: Summary,
    pub recorded: Result<Receipt, StoreError>,
}

/// Records an export job's complete file in the organization's trail: the export's entry, which
/// also names the job.
pub async fn record_job(
    store: &dyn Store,
    org: OrgKey,
    job_id: &str,
    request: &ExportRequest,
    summary: &Summary,
    by: Exporter,
    now: Millis,
) -> Result<Receipt, StoreError> {
    let mut event = export_record(by.actor, by.context, request, summary, now);
    event.description = Some(format!(
        "Audit log export prepared for download: {} entries as {} (job {})",
        summary.entries,
        request.format.as_str().to_uppercase(),
        job_id
    ));
    event
        .metadata
        .insert("job_id".into(), serde_json::Value::from(job_id.to_string()));
    crate::trail::record(store, org, event).await
}

/// The entry that records an export: action `export`, detailed action `audit_log.export`, in the
/// `compliance` channel, by `actor`, with the format, the filters (as JSON text: metadata values
/// are scalars), the number of entries written and whether the export ran to its end.
fn export_record(
    actor: Actor,
    context: Context,
    request: &ExportRequest,
    summary: &Summary,
    now: Millis,
) -> NewEvent {
    let state = if summary.complete {
        ""
    } else {
        " (incomplete)"
    };
    let metadata = [
        ("format", Value::from(request.format.as_str())),
        (
            "filters",
            Value::from(Value::Object(request.filters.clone()).to_string()),
        ),
        ("entries", Value::from(summary.entries)),
        ("complete", Value::from(summary.complete)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    NewEvent {
        occurred_at: now,
        action: "export".into(),
        detailed_action: Some(EXPORT_DETAILED_ACTION.into()),
        channel: EXPORT_CHANNEL.into(),
        description: Some(format!(
            "Audit log export downloaded: {} entries as {}{state}",
            summary.entries,
            request.format.as_str().to_uppercase()
        )),
        outcome: if summary.complete {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        actor,
        entity: None,
        entity_ids: vec![],
        context,
        changes: vec![],
        metadata,
        idempotency_key: None,
        origin: Default::default(),
        related_entities: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for cell in [
            "=SUM(1)",
            "+1",
            "-1",
            "@x",
            "\tx",
            "\rx",
            "\n=1+1",
            " =x",
            "   +x",
            "\u{a0}=x",
            "＝1+1",
            "＠SUM(1)",
            "|calc",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in ["", "a=1", "1", "'=x", " a", "\u{a0}"] {
            assert_eq!(neutralise(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn the_file_name_carries_the_utc_time() {
        // 2026-11-22T03:15:00.123Z
        let ms = 1_795_317_300_123;
        assert_eq!(file_name(Format::Csv, ms), "audit-log-20261122T031500Z.csv");
        assert_eq!(
            file_name(Format::Ndjson, ms),
            "audit-log-20261122T031500Z.ndjson"
        );
    }

    #[test]
    fn format_defaults_to_csv_and_limit_and_cursor_are_ignored() {
        let r = ExportRequest::from_params([("limit", "9999"), ("cursor", "junk")]).unwrap();
        assert_eq!(r.format, Format::Csv);
        assert_eq!(r.filters["actor_type"], "user,api,webhook,scheduler");
        let e = ExportRequest::from_params([("format", "xml")]).unwrap_err();
        assert_eq!(e.field, "format");
    }
}
