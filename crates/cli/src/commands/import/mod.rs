//! `stele import`: moves an audit trail kept elsewhere into a Stele organization (docs/import.md).
//!
//! The command is a client of a running server: it sends the events to `POST /v1/events` in
//! batches, so they pass the same checks, redaction and chain as any client's, and the target may
//! be another machine. Each source has a module that reads it and maps its rows onto Stele's
//! event ([`stele_export`], [`workos_csv`], [`activitylog`]); this one drives the import:
//!
//! - **idempotent**: every event carries an `idempotency_key` derived from what identifies its
//!   row in the source alone ([`row_key`]), so a row sent twice (a retried batch, a re-run within
//!   the server's idempotency window) is stored once;
//! - **resumable**: after each batch the server acknowledged, the state file ([`state`]) records
//!   how far the source was imported; a run continues after that, and a run with nothing left
//!   says the source was already imported;
//! - **refusals name the row**: an event the server refuses stops the import with the source's
//!   row, the field and the server's message (after storing the rows before it), unless
//!   `--skip-invalid`, which counts and lists them instead;
//! - **progress** on standard error while it is a terminal, and a summary at the end.

pub mod activitylog;
mod progress;
mod send;
mod state;
pub mod stele_export;
pub mod workos_csv;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use progress::Progress;
use send::{Pending, Sender};
use state::State;

/// `stele import`: where the events go and how, then the source.
#[derive(Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    source: SourceArgs,
    /// The Stele server to send the events to.
    #[arg(
        long,
        env = "STELE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// An API key with the `ingest` scope: the target organization's own, or a platform key
    /// with --org. Better given in the environment than on the command line, where `ps` shows
    /// it. Never printed.
    #[arg(long, env = "STELE_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// With a platform key: the organization to import into (id `org_…` or external id; an
    /// external id no organization has yet creates it, as on ingest).
    #[arg(long, env = "STELE_ORG", global = true)]
    org: Option<String>,
    /// The state file that makes the import resumable [default: beside the input file,
    /// `<FILE>.import-state.json`; for a table, `stele-import-<database>-<table>.json` in the
    /// current directory]. One per source and target.
    #[arg(long, global = true)]
    state: Option<PathBuf>,
    /// Events per request (at most 1000, the server's batch limit).
    #[arg(long, default_value_t = 500, global = true, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch_size: u16,
    /// Skip the rows that cannot be mapped or that the server refuses (each is listed, with the
    /// field and the reason), instead of stopping at the first.
    #[arg(long, global = true)]
    skip_invalid: bool,
    /// Stop after this many rows of the source in this run (the next run continues after them).
    #[arg(long, global = true)]
    limit: Option<u64>,
    /// How many times a batch is tried when the server is unreachable or answers 429 or 5xx
    /// (waiting 0.5 s, then twice as long each time, at most 30 s), before the import stops.
    #[arg(long, default_value_t = 8, global = true)]
    tries: u32,
}

#[derive(Subcommand)]
enum SourceArgs {
    /// A Stele export (`stele export`, `GET /v1/export`, an export job's file) as NDJSON or
    /// JSON: every entry becomes an event of the target organization, `imported_from` its id.
    SteleExport {
        /// The export file.
        file: PathBuf,
        /// ndjson or json [default: read from the file].
        #[arg(long)]
        format: Option<stele_export::Format>,
    },
    /// A WorkOS Audit Logs CSV export: one event per row, columns taken by their header.
    WorkosCsv {
        /// The CSV file.
        file: PathBuf,
    },
    /// The `activity_log` table of spatie/laravel-activitylog, read from MariaDB/MySQL or
    /// PostgreSQL in id order.
    Activitylog {
        /// mysql://user:password@host:3306/database (MariaDB or MySQL) or
        /// postgres://user:password@host/database. Plain connections only (no TLS).
        #[arg(long, env = "STELE_IMPORT_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The table.
        #[arg(long, default_value = "activity_log")]
        table: String,
        /// The UTC offset of the times in `created_at` (Laravel writes them in the
        /// application's time zone, UTC unless configured otherwise), e.g. +02:00.
        #[arg(long, default_value = "+00:00", allow_hyphen_values = true)]
        utc_offset: String,
        /// Rows read per query.
        #[arg(long, default_value_t = 1000)]
        page_size: u32,
    },
}

/// One row of a source, read and mapped onto an event (or not).
pub struct Row {
    /// Its position in the source, 1-based: rows are read and imported in this order, and the
    /// state file records the last one done.
    pub ordinal: u64,
    /// Where it is, for messages: `line 12 (entry 01a2…)`, `row 7`, `id 42`.
    pub at: String,
    /// For a table: the row's id, after which a resumed run reads on.
    pub cursor: Option<String>,
    /// The event's idempotency key ([`row_key`]); empty for a row that has no identity.
    pub key: String,
    /// The event, or why the row cannot be one.
    pub event: Result<Map<String, Value>, Problem>,
}

/// Why a row cannot be imported: the field (the source's name for it) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What a source hands the import: rows in order over a bounded channel (so reading runs ahead
/// of sending by a few pages at most), or an error that stops it (an unreadable file, a lost
/// database connection).
pub type Rows = tokio::sync::mpsc::Receiver<anyhow::Result<Row>>;

/// Where a resumed run starts, from the state file.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Rows already imported: a file source skips this many.
    pub rows_done: u64,
    /// A table source reads the rows after this id.
    pub cursor: Option<String>,
    /// The key of the source's first row, as the state file recorded it.
    pub first_key: Option<String>,
}

impl Resume {
    /// A file source that skips the rows done checks that its first row is the one the state
    /// recorded: the same path holding another file is another source.
    pub fn check_first(&self, ordinal: u64, key: &str) -> anyhow::Result<()> {
        match &self.first_key {
            Some(k) if ordinal == 1 && self.rows_done > 0 && k != key => anyhow::bail!(
                "the state file was written for another content of this file (its first row \
                 differs); remove the state file to import this one from the start"
            ),
            _ => Ok(()),
        }
    }
}

/// The idempotency key of the event made from one source row: `import:`, the row's place in its
/// source's order as 16 hexadecimal digits (an export entry's `seq`, a WorkOS event's time in
/// milliseconds, a table row's id), `-`, and the first half of the SHA-256 of the source's kind
/// and the row's identity in it (an export entry's id, seq and recording time; a WorkOS event's
/// id; a table's database, name and row id). The same row always gets the same key, whichever
/// run, file format or batch sends it, so the server stores it once (keys are kept at least 24
/// hours; the state file covers longer gaps). The order comes first because a source's rows
/// arrive in its order: keys that follow each other land side by side in the server's index of
/// keys, where random ones would cost it a page write each (docs/benchmarks.md, "Per-event
/// idempotency keys").
pub fn row_key(kind: &str, order: u64, identity: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(kind.as_bytes());
    hash.update(b"\n");
    hash.update(identity.as_bytes());
    let digest = hash.finalize();
    format!("import:{order:016x}-{}", hex::encode(&digest[..16]))
}

/// The metadata key that names the source row of an imported event.
pub const IMPORTED_FROM: &str = "imported_from";

/// A source, opened: what it is (for the state file and messages) and how to read it.
struct Opened {
    /// `stele-export`, `workos-csv`, `activitylog`.
    kind: &'static str,
    /// What the state file records as the source: a file's absolute path, a table's database and
    /// name (never a password).
    name: String,
    default_state: PathBuf,
    start: Box<dyn FnOnce(Resume) -> Rows + Send>,
}

pub(crate) async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let api_key = args
        .api_key
        .clone()
        .filter(|k| !k.trim().is_empty())
        .context("an API key is needed: --api-key or STELE_API_KEY (an ingest key of the target organization, or a platform key with --org)")?;
    let mut sender = Sender::new(&args.url, api_key, args.org.clone(), args.tries)?;
    sender.stop_at_refusal = !args.skip_invalid;
    let target = sender.target();
    let source = open(&args.source).await?;
    let state_path = args.state.clone().unwrap_or(source.default_state.clone());
    let mut state = State::load(&state_path, source.kind, &source.name, &target)?;
    let resume = state.resume();
    let already = state.rows_done;
    let mut rows = (source.start)(resume);

    let started = Instant::now();
    let mut progress = Progress::new(already);
    let mut run = Run {
        sender: std::sync::Arc::new(sender),
        in_flight: std::collections::VecDeque::new(),
        state_path: &state_path,
        skip_invalid: args.skip_invalid,
        skipped: Vec::new(),
        sent: 0,
        rows: 0,
    };
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // The first Ctrl-C lets the batch on its way finish and be recorded; a second one
        // stops at once (the state file then lacks at most that batch, which a re-run sends
        // again and the server stores once).
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                eprintln!("\nstopping after the batch on its way (Ctrl-C again to stop now)");
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        });
    }
    let limit = args.limit.unwrap_or(u64::MAX);
    let batch_size = usize::from(args.batch_size);
    let mut first = true;
    let mut stop: Option<Stop> = None;
    while stop.is_none() {
        let mut batch: Vec<Pending> = Vec::new();
        let mut bytes = 0usize;
        // The last row read into this batch (sent or skipped).
        let mut last: Option<(u64, Option<String>)> = None;
        while batch.len() < batch_size && bytes < send::MAX_BATCH_BYTES {
            if run.rows >= limit {
                stop = Some(Stop::Limit);
                break;
            }
            let Some(row) = rows.recv().await else {
                stop = Some(Stop::End);
                break;
            };
            let row = row?;
            if first {
                state.check_first_row(&row, &state_path)?;
                first = false;
            }
            run.rows += 1;
            progress.read(row.ordinal);
            match row.event {
                Ok(mut event) => {
                    event.insert("idempotency_key".into(), Value::String(row.key.clone()));
                    let body = serde_json::to_vec(&event).expect("JSON values serialize");
                    bytes += body.len() + 1;
                    last = Some((row.ordinal, row.cursor.clone()));
                    batch.push(Pending {
                        at: row.at,
                        ordinal: row.ordinal,
                        cursor: row.cursor,
                        body,
                    });
                }
                Err(problem) if run.skip_invalid => {
                    last = Some((row.ordinal, row.cursor.clone()));
                    run.skip(&row.at, problem.to_string());
                }
                Err(problem) => {
                    // What came before it is stored first, so the import resumes at this row.
                    if let Some(last) = last {
                        run.submit(batch, last, &mut state, &mut progress).await?;
                    }
                    run.drain(&mut state, &mut progress).await?;
                    anyhow::bail!(
                        "{} {}: {problem}\n{}",
                        source.name,
                        row.at,
                        run.stopped_here(&state)
                    );
                }
            }
        }
        if let Some(last) = last {
            run.submit(batch, last, &mut state, &mut progress).await?;
        }
        if stop.is_none() && interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            stop = Some(Stop::Interrupted);
        }
    }
    run.drain(&mut state, &mut progress).await?;
    progress.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let skipped = run.skipped.len();
    let target_name = run.sender.target();
    if run.rows == 0 && already > 0 {
        eprintln!(
            "already imported: the {already} rows of {} were imported into {target_name} before \
             (state {}); nothing to send",
            source.name,
            state_path.display()
        );
        return Ok(());
    }
    let rate = if elapsed > 0.0 {
        run.sent as f64 / elapsed
    } else {
        0.0
    };
    eprintln!(
        "imported {} rows of {} into {target_name}: {} events sent in {elapsed:.1} s \
         ({rate:.0} events/s), {skipped} skipped; {} rows imported in all (state {})",
        run.rows,
        source.name,
        run.sent,
        state.rows_done,
        state_path.display()
    );
    match stop {
        Some(Stop::Interrupted) => anyhow::bail!(
            "interrupted after {} rows; run the same command again to continue",
            state.rows_done
        ),
        Some(Stop::Limit) => eprintln!(
            "stopped at --limit {limit}; run the same command again (without --limit) to continue"
        ),
        _ => {}
    }
    Ok(())
}

/// Why reading stopped.
enum Stop {
    /// The source has no more rows.
    End,
    /// `--limit` rows were read.
    Limit,
    /// Ctrl-C (the batch on its way was finished and recorded first).
    Interrupted,
}

/// The counts of one run, and the sending of its batches.
struct Run<'a> {
    sender: std::sync::Arc<Sender>,
    /// The batches on their way, oldest first.
    in_flight: std::collections::VecDeque<InFlight>,
    state_path: &'a Path,
    skip_invalid: bool,
    /// Each skipped row: where, and why.
    skipped: Vec<(String, String)>,
    sent: u64,
    rows: u64,
}

/// A batch on its way: the task sending it, each row's position, and the last row read into it.
struct InFlight {
    task: tokio::task::JoinHandle<anyhow::Result<send::Outcome>>,
    positions: Vec<(u64, Option<String>)>,
    last: (u64, Option<String>),
}

/// How many batches may be on their way at once: two, so the server stores one while the next
/// is read, checked and sealed.
const IN_FLIGHT: usize = 2;

/// At most this many skipped rows are listed one by one; the rest are counted.
const LISTED_SKIPS: usize = 100;

impl Run<'_> {
    fn skip(&mut self, at: &str, why: String) {
        if self.skipped.len() < LISTED_SKIPS {
            eprintln!("skipped {at}: {why}");
        } else if self.skipped.len() == LISTED_SKIPS {
            eprintln!("(further skipped rows are counted, not listed)");
        }
        self.skipped.push((at.to_string(), why));
    }

    /// Starts sending a batch whose last row read (sent or skipped) is `last`. At most
    /// [`IN_FLIGHT`] batches are on their way at once (the server stores one while the next
    /// arrives); before another starts, the oldest is waited for and recorded.
    async fn submit(
        &mut self,
        batch: Vec<Pending>,
        last: (u64, Option<String>),
        state: &mut State,
        progress: &mut Progress,
    ) -> anyhow::Result<()> {
        if self.in_flight.len() >= IN_FLIGHT {
            self.complete_oldest(state, progress).await?;
        }
        let positions = batch
            .iter()
            .map(|p| (p.ordinal, p.cursor.clone()))
            .collect();
        let sender = self.sender.clone();
        let task = tokio::spawn(async move { sender.send(batch).await });
        self.in_flight.push_back(InFlight {
            task,
            positions,
            last,
        });
        Ok(())
    }

    /// Waits for every batch on its way, oldest first, recording each.
    async fn drain(&mut self, state: &mut State, progress: &mut Progress) -> anyhow::Result<()> {
        while !self.in_flight.is_empty() {
            self.complete_oldest(state, progress).await?;
        }
        Ok(())
    }

    /// Waits for the oldest batch and records it in the state file. Its refused events are
    /// skipped or stop the import, after the ones before them are recorded. (A batch after it
    /// may be stored already; a later run sends it again, and the server stores it once.)
    async fn complete_oldest(
        &mut self,
        state: &mut State,
        progress: &mut Progress,
    ) -> anyhow::Result<()> {
        let Some(batch) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let outcome = batch
            .task
            .await
            .context("sending a batch")?
            .map_err(|e| anyhow::anyhow!("{e}\n{}", self.stopped_here(state)))?;
        self.sent += outcome.sent;
        progress.sent(self.sent);
        for (row, problem) in outcome.refused {
            if !self.skip_invalid {
                // The rows before this one were sent, and stored.
                if let Some((ordinal, cursor)) = batch
                    .positions
                    .iter()
                    .rev()
                    .find(|(o, _)| *o < row.ordinal)
                    .cloned()
                {
                    state.done_through(ordinal, cursor, self.skipped.len() as u64);
                }
                state.done_sent(self.sent);
                state.save(self.state_path)?;
                let hint = if problem.contains(": organization:") {
                    " (a platform key names the organization to import into with --org)"
                } else {
                    ""
                };
                anyhow::bail!(
                    "{}: the server refused it: {problem}{hint}\n{}",
                    row.at,
                    self.stopped_here(state)
                );
            }
            self.skip(&row.at, format!("the server refused it: {problem}"));
        }
        let (ordinal, cursor) = batch.last;
        state.done_through(ordinal, cursor, self.skipped.len() as u64);
        state.done_sent(self.sent);
        state.save(self.state_path)
    }

    fn stopped_here(&self, state: &State) -> String {
        format!(
            "The import stopped: {} rows of the source are imported (state {}). Fix the row, or \
             pass --skip-invalid to skip such rows, then run the same command again to continue.",
            state.rows_done,
            self.state_path.display()
        )
    }
}

async fn open(source: &SourceArgs) -> anyhow::Result<Opened> {
    match source {
        SourceArgs::SteleExport { file, format } => {
            let path = absolute(file)?;
            let format = match format {
                Some(f) => *f,
                None => stele_export::detect(&path)?,
            };
            let reader_path = path.clone();
            Ok(Opened {
                kind: stele_export::KIND,
                name: path.display().to_string(),
                default_state: state::beside(&path),
                start: Box::new(move |resume| stele_export::read(reader_path, format, resume)),
            })
        }
        SourceArgs::WorkosCsv { file } => {
            let path = absolute(file)?;
            let columns = workos_csv::Columns::of_file(&path)?;
            let reader_path = path.clone();
            Ok(Opened {
                kind: workos_csv::KIND,
                name: path.display().to_string(),
                default_state: state::beside(&path),
                start: Box::new(move |resume| workos_csv::read(reader_path, columns, resume)),
            })
        }
        SourceArgs::Activitylog {
            database_url,
            table,
            utc_offset,
            page_size,
        } => {
            let table =
                activitylog::Table::connect(database_url, table, utc_offset, (*page_size).max(1))
                    .await?;
            Ok(Opened {
                kind: activitylog::KIND,
                name: table.name(),
                default_state: PathBuf::from(table.state_file_name()),
                start: Box::new(move |resume| table.read(resume)),
            })
        }
    }
}

fn absolute(file: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_key_depends_on_its_kind_order_and_identity_only() {
        let k = row_key("activitylog", 42, "app\nactivity_log\n42");
        assert_eq!(k, row_key("activitylog", 42, "app\nactivity_log\n42"));
        assert!(
            k.starts_with("import:000000000000002a-") && k.len() == 7 + 17 + 32,
            "{k}"
        );
        assert_ne!(k, row_key("activitylog", 42, "app\nactivity_log\n43"));
        assert_ne!(k, row_key("workos-csv", 42, "app\nactivity_log\n42"));
        // Rows in their source's order get keys in that order.
        assert!(row_key("activitylog", 43, "app\nactivity_log\n43") > k);
        assert!(row_key("activitylog", 256, "app\nactivity_log\n256") > k);
    }
}
