//! The search index behind the commit: the two FTS5 tables (filter terms, description trigrams)
//! live in a file of their own beside the database (`<database>-search`), written by a thread of
//! its own, the indexer.
//!
//! Why: those tables were three quarters of the writer thread's work (docs/benchmarks.md, "The
//! write path taken apart"), and one SQLite file has one write lock, so in the same file they
//! could only ever be written by the writer, in turn with the entries. In a file of their own
//! they are written on the other core while the writer commits the next group; an
//! acknowledgement still means the entry is durably committed and chained.
//!
//! How nothing is missed:
//! - In the same transaction as the change, the writer appends a row to `search_queue` (in the
//!   database): an entry written, rewritten (an erasure or a redaction) or removed (retention, an
//!   organization's deletion).
//! - The indexer takes queue rows in `id` order into the index file and records, in the same
//!   transaction of that file, the last `id` it took in: the watermark. A crash loses nothing:
//!   what the index has not committed is still after the watermark.
//! - Readers attach the index file and read the queue rows after the watermark first
//!   ([`crate::read`], `Unindexed`): the index answers for every entry but those, which are
//!   checked directly with the filter's reference semantics (`EventFilter::matches`). An
//!   acknowledged entry is visible to every filter at once.
//! - The writer deletes queue rows the index has taken in (all but the newest, so that `id`
//!   keeps growing).
//!
//! The index file can always be rebuilt from the entries: it is rebuilt when it is missing, was
//! made for another database (`meta.search_index_id`), or does not match the queue (a restore
//! of one file without the other). Backups need only the database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use stele_core::Entry;
use stele_store::{OrgKey, Result, StoreError};
use tokio::sync::oneshot;

use crate::codec::{ENTRY_COLUMNS, decode_row, description_rowid};
use crate::dict::Dict;
use crate::error::map_err;
use crate::terms;

/// What a queue row tells the index to follow. The numbers are part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new entry: index it.
    Written = 1,
    /// An entry rewritten in place (erasure, redaction): replace its rows.
    Rewritten = 2,
    /// An entry removed (retention, an organization's deletion): remove its rows.
    Removed = 3,
}

/// The index file of the database at `database`: its name with `-search` added, beside it.
pub fn path_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-search");
    PathBuf::from(name)
}

/// The name readers attach the index file under.
pub const SCHEMA_NAME: &str = "search";

/// The index file's tables. `contentless_delete` lets a row be removed by rowid, without the
/// text it was made from (which an erasure has just rewritten and retention has just deleted).
const SCHEMA: &str = "
CREATE TABLE state (
    only_row   INTEGER PRIMARY KEY CHECK (only_row = 1),
    -- meta.search_index_id of the database this index was built from.
    store_id   TEXT NOT NULL,
    -- The last search_queue.id taken in.
    watermark  INTEGER NOT NULL
);
-- Hashed filter terms per entry (rowid = entries.pk); see terms.rs.
CREATE VIRTUAL TABLE entry_terms USING fts5(
    terms, tokenize = 'ascii', content = '', contentless_delete = 1, detail = 'none'
);
INSERT INTO entry_terms (entry_terms, rank) VALUES ('hashsize', 16777216);
INSERT INTO entry_terms (entry_terms, rank) VALUES ('automerge', 8);
INSERT INTO entry_terms (entry_terms, rank) VALUES ('crisismerge', 32);
-- Description trigrams (rowid = codec::description_rowid(org, seq)).
CREATE VIRTUAL TABLE entries_fts USING fts5(
    description, tokenize = 'trigram', content = '', contentless_delete = 1, detail = 'none'
);
INSERT INTO entries_fts (entries_fts, rank) VALUES ('hashsize', 16777216);
INSERT INTO entries_fts (entries_fts, rank) VALUES ('automerge', 8);
INSERT INTO entries_fts (entries_fts, rank) VALUES ('crisismerge', 32);
";

/// The index file's format; a file of another version is rebuilt.
const FORMAT: i64 = 1;

/// Queue rows taken into the index in one transaction of its file, at most. Larger transactions
/// cost FTS5 less per row (each commit flushes a segment and merges), but what is not yet taken
/// in is what every read checks row by row.
const BATCH: usize = 10_000;
/// While rows keep coming, the indexer takes them in at most this often, so that each
/// transaction of the index file takes many: a few rows each (as single-event requests arrive)
/// cost FTS5 several times as much per row. Readers check the rows meanwhile; when rows stop
/// coming, the next one is taken in at once.
const GATHER: Duration = Duration::from_millis(100);
/// How long the indexer waits before trying again after taking rows in failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often the indexer looks at the queue when nobody tells it about new rows (another
/// process wrote them, or a write other than a group commit).
const POLL: Duration = Duration::from_millis(100);
/// Handed-over groups waiting in the channel, at most; past it, the writer stops handing over
/// and the indexer reads those entries back from the database instead.
const HANDOVER_GROUPS: usize = 256;
/// Handed-over rows the indexer keeps waiting, at most (a few MB); under a backlog, rows beyond
/// it are read back from the database when their turn comes.
const HANDOVER_ROWS: usize = 20_000;

/// Records, in the writer's transaction, that the index must follow a change of entry `pk`;
/// returns the queue row's id.
pub fn enqueue(conn: &Connection, org: OrgKey, seq: i64, pk: i64, change: Change) -> Result<i64> {
    conn.prepare_cached("INSERT INTO search_queue (org_id, seq, pk, op) VALUES (?, ?, ?, ?)")
        .and_then(|mut s| s.execute(params![org.get(), seq, pk, change as i64]))
        .map_err(map_err)?;
    Ok(conn.last_insert_rowid())
}

/// The newest queue row's id (0 when the queue is empty).
pub fn newest_queued(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM search_queue")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(map_err)
}

/// Deletes the queue rows the index has taken in, all but the newest (so the next row's `id`,
/// one past the largest, is never one the index has already passed).
pub fn forget_taken_in(conn: &Connection, watermark: i64) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM search_queue
         WHERE id <= ?1 AND id < (SELECT max(id) FROM search_queue)",
    )
    .and_then(|mut s| s.execute([watermark]))
    .map_err(map_err)?;
    Ok(())
}

/// An entry's index rows as the writer made them (the terms on the request's task), handed to
/// the indexer so that it need not read and decode the entry again.
pub struct Prepared {
    pub queue_id: i64,
    pub pk: i64,
    pub description_rowid: i64,
    pub terms: String,
    pub description: Option<String>,
}

enum Message {
    Prepared(Vec<Prepared>),
    /// Wake up: the queue has rows nobody handed over.
    Wake,
    /// Take in everything queued so far, then leave nothing of removed rows in the file.
    Compact(oneshot::Sender<Result<()>>),
}

/// The writer's and the store's handle on the indexer.
#[derive(Clone)]
pub struct Feed {
    messages: SyncSender<Message>,
    /// The watermark as last committed (0 until the indexer has committed once).
    taken_in: Arc<AtomicI64>,
}

impl Feed {
    /// Hands over the rows of a group that has just committed.
    pub fn hand_over(&self, rows: Vec<Prepared>) {
        let message = if rows.is_empty() {
            Message::Wake
        } else {
            Message::Prepared(rows)
        };
        match self.messages.try_send(message) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            // The indexer is behind; it reads the entries back instead.
            Err(TrySendError::Full(_)) => {}
        }
    }

    /// The last queue row the index has committed.
    pub fn taken_in(&self) -> i64 {
        self.taken_in.load(Ordering::Acquire)
    }

    /// Waits, at most `limit`, until the index has taken in queue row `id` and every row before
    /// it; says whether it has.
    pub async fn taken_in_by(&self, id: i64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        self.hand_over(Vec::new());
        while self.taken_in() < id {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Takes in everything queued before the call, then merges the index into one segment per
    /// table, rebuilds its file and empties its write-ahead log: after an erasure, nothing of the
    /// rows it replaced is left in the index file.
    pub async fn compact(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        let mut message = Message::Compact(reply);
        // Never a blocking send on the async runtime: while the channel is full, wait a little.
        loop {
            match self.messages.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    message = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(TrySendError::Disconnected(_)) => return Err(stopped()),
            }
        }
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the search indexer has stopped".into())
}

/// Stops the indexer thread when dropped.
pub struct Indexer {
    stop: Arc<AtomicBool>,
    feed: Feed,
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.feed.hand_over(Vec::new());
    }
}

/// Opens (creating, or rebuilding when it does not match the database) the index file of the
/// database at `database`, which must be migrated already, and starts the indexer.
pub fn start(database: &Path, dict: Arc<Dict>) -> Result<(Feed, Indexer)> {
    let path = path_of(database);
    crate::owner_only(&path)
        .map_err(|e| StoreError::Other(format!("preparing {}: {e}", path.display())))?;
    let mut conn = Connection::open(&path).map_err(map_err)?;
    configure(&conn)?;
    conn.execute("ATTACH DATABASE ?1 AS store", [database.to_string_lossy()])
        .map_err(map_err)?;
    let watermark = match consistent_watermark(&conn)? {
        Some(watermark) => watermark,
        None => rebuild(&mut conn, database, &dict)?,
    };
    let (messages, inbox) = mpsc::sync_channel(HANDOVER_GROUPS);
    let feed = Feed {
        messages,
        taken_in: Arc::new(AtomicI64::new(watermark)),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let worker = Worker {
        conn,
        dict,
        inbox,
        handed_over: HashMap::new(),
        taken_in: feed.taken_in.clone(),
        stop: stop.clone(),
        compactions: Vec::new(),
        gather_until: None,
    };
    std::thread::Builder::new()
        .name("stele-sqlite-index".into())
        .spawn(move || worker.run())
        .map_err(|e| StoreError::Other(format!("starting the search indexer: {e}")))?;
    Ok((feed.clone(), Indexer { stop, feed }))
}

/// Attaches the index file to a read connection as [`SCHEMA_NAME`], read through a memory map
/// of `mmap_bytes` like the database.
pub fn attach(conn: &Connection, database: &Path, mmap_bytes: u64) -> rusqlite::Result<()> {
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {SCHEMA_NAME}"),
        [path_of(database).to_string_lossy()],
    )?;
    conn.pragma_update(Some(SCHEMA_NAME), "mmap_size", mmap_bytes)?;
    // The same page cache as the database's (`schema::configure_reader`); an attached file
    // otherwise gets SQLite's default of 2 MiB.
    conn.pragma_update(Some(SCHEMA_NAME), "cache_size", -32768)
}

fn configure(conn: &Connection) -> Result<()> {
    crate::schema::wait_when_busy(conn).map_err(map_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         -- The index is rebuilt from the entries if it is ever lost or behind (see
         -- `consistent_watermark`), so its commits need not wait for the disk.
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16384;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(map_err)
}

/// The index's watermark if the file is an index of this database that the queue agrees with;
/// `None` if it must be rebuilt. Asked under the index file's write lock, so that no indexer
/// (of this process or another) moves the watermark meanwhile.
fn consistent_watermark(conn: &Connection) -> Result<Option<i64>> {
    let format: i64 = conn
        .query_row("PRAGMA main.user_version", [], |r| r.get(0))
        .map_err(map_err)?;
    if format != FORMAT {
        return Ok(None);
    }
    lock_index(conn)?;
    let answer = (|| {
        let state: Option<(String, i64)> = conn
            .query_row("SELECT store_id, watermark FROM main.state", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let store_id: String = conn.query_row(
            "SELECT value FROM store.meta WHERE key = 'search_index_id'",
            [],
            |r| r.get(0),
        )?;
        let (lowest, highest): (Option<i64>, Option<i64>) =
            conn.query_row("SELECT min(id), max(id) FROM store.search_queue", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(state.and_then(|(made_for, watermark)| {
            let ahead = watermark > highest.unwrap_or(0);
            let behind = lowest.is_some_and(|lowest| lowest > watermark + 1);
            (made_for == store_id && !ahead && !behind).then_some(watermark)
        }))
    })()
    .map_err(map_err);
    conn.execute_batch("ROLLBACK").map_err(map_err)?;
    answer
}

/// Begins a transaction holding the index file's write lock and only it (`BEGIN IMMEDIATE`
/// would take the database's too, and stall its writer): a write to the index file comes first.
fn lock_index(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN").map_err(map_err)?;
    conn.execute("UPDATE main.state SET watermark = watermark", [])
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            map_err(e)
        })?;
    Ok(())
}

/// Rows written per transaction while rebuilding.
const REBUILD_BATCH: usize = 20_000;

/// Makes the index afresh from every entry of the database; returns its watermark.
fn rebuild(conn: &mut Connection, database: &Path, dict: &Dict) -> Result<i64> {
    let started = Instant::now();
    tracing::info!("building the search index from the stored entries");
    // Whatever the file held goes: dropping its tables and writing new ones in the same file.
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM main.sqlite_schema
             WHERE type = 'table' AND name IN ('state', 'entry_terms', 'entries_fts')",
        )
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(map_err)?;
    let tx = conn.transaction().map_err(map_err)?;
    for table in tables {
        tx.execute_batch(&format!("DROP TABLE main.{table}"))
            .map_err(map_err)?;
    }
    tx.execute_batch(SCHEMA).map_err(map_err)?;
    tx.pragma_update(Some("main"), "user_version", 0)
        .map_err(map_err)?;
    tx.commit().map_err(map_err)?;

    // The entries as of one snapshot of the database, and the queue's last row in the same
    // snapshot: every later row is a change the index takes in afterwards.
    let source =
        Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(map_err)?;
    crate::schema::wait_when_busy(&source).map_err(map_err)?;
    source.execute_batch("BEGIN").map_err(map_err)?;
    let (store_id, watermark): (String, i64) = source
        .query_row(
            "SELECT (SELECT value FROM meta WHERE key = 'search_index_id'),
                    (SELECT coalesce(max(id), 0) FROM search_queue)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(map_err)?;
    dict.refresh(&source).map_err(map_err)?;
    let mut stmt = source
        .prepare(&format!(
            "SELECT {ENTRY_COLUMNS}, e.org_id FROM entries e ORDER BY e.pk"
        ))
        .map_err(map_err)?;
    let mut rows = stmt.query([]).map_err(map_err)?;
    let mut batch = Rows::default();
    let mut total = 0u64;
    loop {
        let row = rows.next().map_err(map_err)?;
        let end = row.is_none();
        if let Some(row) = row {
            let org = OrgKey::new(row.get(ENTRY_COLUMN_ORG).map_err(map_err)?);
            let (pk, entry) = decode_row(row, dict)
                .map_err(map_err)?
                .map_err(|_| StoreError::Other("an entry names an unknown dictionary id".into()))?;
            batch.add(org, pk, &entry);
            total += 1;
        }
        if batch.len() >= REBUILD_BATCH || end {
            let tx = conn.transaction().map_err(map_err)?;
            batch.write(&tx)?;
            tx.commit().map_err(map_err)?;
            if total.is_multiple_of(200_000) || end {
                tracing::info!(entries = total, "search index: entries indexed");
            }
        }
        if end {
            break;
        }
    }
    drop(rows);
    drop(stmt);
    source.execute_batch("COMMIT").map_err(map_err)?;
    let tx = conn.transaction().map_err(map_err)?;
    tx.execute(
        "INSERT INTO main.state (only_row, store_id, watermark) VALUES (1, ?, ?)",
        params![store_id, watermark],
    )
    .map_err(map_err)?;
    tx.pragma_update(Some("main"), "user_version", FORMAT)
        .map_err(map_err)?;
    tx.commit().map_err(map_err)?;
    tracing::info!(
        entries = total,
        seconds = started.elapsed().as_secs_f64(),
        "search index built"
    );
    Ok(watermark)
}

/// The column after [`ENTRY_COLUMNS`] that the indexer's reads add: the entry's organization.
const ENTRY_COLUMN_ORG: usize = crate::codec::ENTRY_COLUMN_COUNT;

/// Index rows waiting to be written, each table's in rowid order when written: FTS5 flushes its
/// in-memory index to a new segment whenever a row's rowid is not above the last one's
/// (`sqlite3Fts5IndexBeginWrite`), and a description's rowid is its organization's range plus
/// its `seq`, so rows of many organizations written in arrival order would flush at nearly every
/// row (docs/benchmarks.md, "Batches of many organizations").
#[derive(Default)]
struct Rows {
    terms: Vec<(i64, String)>,
    descriptions: Vec<(i64, String)>,
}

impl Rows {
    fn len(&self) -> usize {
        self.terms.len()
    }

    fn add(&mut self, org: OrgKey, pk: i64, entry: &Entry) {
        self.terms.push((pk, terms::entry_terms(org, &entry.event)));
        if let Some(description) = &entry.event.description {
            self.descriptions.push((
                description_rowid(org.get(), entry.seq.get()),
                description.clone(),
            ));
        }
    }

    fn add_prepared(&mut self, prepared: Prepared) {
        self.terms.push((prepared.pk, prepared.terms));
        if let Some(description) = prepared.description {
            self.descriptions
                .push((prepared.description_rowid, description));
        }
    }

    fn write(&mut self, conn: &Connection) -> Result<()> {
        self.terms.sort_unstable_by_key(|(rowid, _)| *rowid);
        self.descriptions.sort_unstable_by_key(|(rowid, _)| *rowid);
        let mut terms = conn
            .prepare_cached("INSERT INTO main.entry_terms (rowid, terms) VALUES (?, ?)")
            .map_err(map_err)?;
        for (rowid, text) in self.terms.drain(..) {
            terms.execute(params![rowid, text]).map_err(map_err)?;
        }
        let mut descriptions = conn
            .prepare_cached("INSERT INTO main.entries_fts (rowid, description) VALUES (?, ?)")
            .map_err(map_err)?;
        for (rowid, text) in self.descriptions.drain(..) {
            descriptions
                .execute(params![rowid, text])
                .map_err(map_err)?;
        }
        Ok(())
    }
}

/// The indexer thread's state.
struct Worker {
    /// The index file as `main`, the database attached as `store`.
    conn: Connection,
    dict: Arc<Dict>,
    inbox: Receiver<Message>,
    /// Rows handed over by the writer, by queue id, until taken in.
    handed_over: HashMap<i64, Prepared>,
    taken_in: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    /// Compactions asked for, answered after the next catch-up.
    compactions: Vec<oneshot::Sender<Result<()>>>,
    /// Until when rows are gathered before the next take-in (see [`GATHER`]).
    gather_until: Option<Instant>,
}

/// One queue row.
struct QueueRow {
    id: i64,
    org: OrgKey,
    seq: i64,
    pk: i64,
    op: i64,
}

impl Worker {
    fn run(mut self) {
        loop {
            let wait = self.gather_until.map_or(POLL, |until| {
                until.saturating_duration_since(Instant::now())
            });
            match self.inbox.recv_timeout(wait) {
                Ok(message) => self.receive(message),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(message) = self.inbox.try_recv() {
                self.receive(message);
            }
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let gathering = self
                .gather_until
                .is_some_and(|until| Instant::now() < until);
            if gathering && self.compactions.is_empty() {
                continue;
            }
            let caught_up = self.catch_up();
            self.gather_until = match caught_up {
                Ok(0) => None,
                Ok(_) => Some(Instant::now() + GATHER),
                // A failing index file (a full disk, say) is tried again a second later, not
                // at every turn: readers check what it has not taken in meanwhile.
                Err(_) => Some(Instant::now() + RETRY_AFTER),
            };
            for reply in std::mem::take(&mut self.compactions) {
                let compacted = match &caught_up {
                    Ok(_) => self.compact(),
                    Err(error) => Err(StoreError::Unavailable(format!(
                        "the search index could not take in the latest changes: {error}"
                    ))),
                };
                let _ = reply.send(compacted);
            }
        }
        tracing::debug!("search indexer stopped");
    }

    fn receive(&mut self, message: Message) {
        match message {
            Message::Prepared(rows) => {
                for row in rows {
                    if self.handed_over.len() >= HANDOVER_ROWS {
                        break;
                    }
                    self.handed_over.insert(row.queue_id, row);
                }
            }
            Message::Wake => {}
            Message::Compact(reply) => self.compactions.push(reply),
        }
    }

    /// Takes in queue rows until none is left; returns how many. An error is logged and retried
    /// at the next turn (readers check what is not taken in, so nothing is missed meanwhile).
    fn catch_up(&mut self) -> std::result::Result<usize, StoreError> {
        let mut total = 0;
        loop {
            match self.take_in() {
                Ok(taken) if taken < BATCH => return Ok(total + taken),
                Ok(taken) => {
                    total += taken;
                    // Between batches, collect what the writer handed over meanwhile.
                    while let Ok(message) = self.inbox.try_recv() {
                        self.receive(message);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "search index: taking in new entries failed; will retry");
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(error);
                }
            }
        }
    }

    /// Takes up to [`BATCH`] queue rows into the index in one transaction of its file; returns
    /// how many.
    fn take_in(&mut self) -> Result<usize> {
        let conn = &self.conn;
        // Most turns find nothing new: asked without a lock or a transaction.
        let newest: Option<i64> = conn
            .prepare_cached("SELECT max(id) FROM store.search_queue")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(map_err)?;
        if newest.unwrap_or(0) <= self.taken_in.load(Ordering::Acquire) {
            return Ok(0);
        }
        // The lock first, so the queue is read after every other indexer's commit and the
        // watermark cannot move under this one.
        lock_index(conn)?;
        let watermark: i64 = conn
            .query_row("SELECT watermark FROM main.state", [], |r| r.get(0))
            .map_err(map_err)?;
        let queue: Vec<QueueRow> = conn
            .prepare_cached(
                "SELECT id, org_id, seq, pk, op FROM store.search_queue
                 WHERE id > ? ORDER BY id LIMIT ?",
            )
            .and_then(|mut s| {
                s.query_map(params![watermark, BATCH as i64], |r| {
                    Ok(QueueRow {
                        id: r.get(0)?,
                        org: OrgKey::new(r.get(1)?),
                        seq: r.get(2)?,
                        pk: r.get(3)?,
                        op: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(map_err)?;
        let Some(last) = queue.last().map(|row| row.id) else {
            // Another process's indexer took everything in.
            conn.execute_batch("ROLLBACK").map_err(map_err)?;
            self.handed_over.clear();
            self.publish(watermark, 0);
            return Ok(0);
        };
        let mut rows = Rows::default();
        for item in &queue {
            match item.op {
                op if op == Change::Written as i64 => match self.handed_over.remove(&item.id) {
                    Some(prepared) => rows.add_prepared(prepared),
                    None => {
                        if let Some(entry) = stored_entry(conn, &self.dict, item.pk)? {
                            rows.add(item.org, item.pk, &entry);
                        }
                    }
                },
                op => {
                    // Rows added so far go in first: a removal must follow them.
                    rows.write(conn)?;
                    conn.prepare_cached("DELETE FROM main.entry_terms WHERE rowid = ?")
                        .and_then(|mut s| s.execute([item.pk]))
                        .map_err(map_err)?;
                    conn.prepare_cached("DELETE FROM main.entries_fts WHERE rowid = ?")
                        .and_then(|mut s| s.execute([description_rowid(item.org.get(), item.seq)]))
                        .map_err(map_err)?;
                    if op == Change::Rewritten as i64
                        && let Some(entry) = stored_entry(conn, &self.dict, item.pk)?
                    {
                        rows.add(item.org, item.pk, &entry);
                    }
                }
            }
        }
        rows.write(conn)?;
        conn.execute("UPDATE main.state SET watermark = ?", [last])
            .map_err(map_err)?;
        conn.execute_batch("COMMIT").map_err(map_err)?;
        self.handed_over.retain(|id, _| *id > last);
        self.publish(last, queue.len());
        Ok(queue.len())
    }

    fn publish(&self, watermark: i64, taken: usize) {
        self.taken_in.fetch_max(watermark, Ordering::AcqRel);
        if taken > 0 {
            let newest: rusqlite::Result<Option<i64>> =
                self.conn
                    .query_row("SELECT max(id) FROM store.search_queue", [], |r| r.get(0));
            if let Ok(newest) = newest {
                let waiting = newest.unwrap_or(watermark).saturating_sub(watermark);
                stele_store::metrics::search_index_lag(waiting.max(0) as u64);
            }
        } else {
            stele_store::metrics::search_index_lag(0);
        }
    }

    /// See [`Feed::compact`]; the caller has caught up first.
    fn compact(&self) -> Result<()> {
        self.conn
            .execute_batch(
                "INSERT INTO main.entry_terms (entry_terms) VALUES ('optimize');
                 INSERT INTO main.entries_fts (entries_fts) VALUES ('optimize');
                 VACUUM main;",
            )
            .map_err(map_err)?;
        crate::erasure::empty_wal(&self.conn, "main")
    }
}

/// The entry `pk` as the database holds it now (`None`: removed since; its removal is a later
/// queue row).
fn stored_entry(conn: &Connection, dict: &Dict, pk: i64) -> Result<Option<Entry>> {
    for _ in 0..2 {
        let decoded = conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM store.entries e WHERE e.pk = ?"
            ))
            .and_then(|mut s| s.query_row([pk], |row| decode_row(row, dict)).optional())
            .map_err(map_err)?;
        match decoded {
            None => return Ok(None),
            Some(Ok((_, entry))) => return Ok(Some(entry)),
            // A dictionary value newer than this process's cache.
            Some(Err(_)) => dict.refresh(conn).map_err(map_err)?,
        }
    }
    Err(StoreError::Other(
        "an entry names an unknown dictionary id".into(),
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stele_core::erase::Person;
    use stele_core::filter::EventFilter;
    use stele_core::params::PageRequest;
    use stele_core::{ActorType, Context};
    use stele_store::Erasure;
    use stele_store::conformance::{event, request};
    use stele_store::prelude::*;

    use super::*;
    use crate::SqliteStore;

    const T0: i64 = 1_767_225_600_000;

    /// A connection holding the index file's write lock: the indexer cannot take anything in
    /// until it is dropped.
    fn hold_index(database: &Path) -> Connection {
        let conn = Connection::open(path_of(database)).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn
    }

    /// A store in a directory of its own (kept while the first value lives), its path, and an
    /// organization.
    async fn acme() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore, OrgKey) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let store = SqliteStore::open(&path).unwrap();
        let org = store.create_org("acme").await.unwrap().key;
        (dir, path, store, org)
    }

    /// Rows the index file holds for an organization (its term is on every entry).
    fn indexed_rows(database: &Path, org: OrgKey) -> i64 {
        let conn = Connection::open(path_of(database)).unwrap();
        conn.query_row(
            "SELECT count(*) FROM entry_terms WHERE entry_terms MATCH ?",
            [terms::term(org, terms::Field::Org, "")],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Waits until the index has taken in every queued change.
    async fn caught_up(store: &SqliteStore) {
        let newest = newest_queued(&Connection::open(store.path()).unwrap()).unwrap();
        assert!(
            store
                .search
                .taken_in_by(newest, Duration::from_secs(20))
                .await,
            "the indexer did not catch up"
        );
    }

    fn page(filter: EventFilter) -> PageRequest {
        PageRequest {
            filter,
            limit: 2,
            cursor: None,
        }
    }

    fn events() -> Vec<stele_core::NewEvent> {
        (0..5)
            .map(|i| {
                let mut e = event(
                    if i % 2 == 0 {
                        "job.print"
                    } else {
                        "user.login"
                    },
                    T0 + i,
                );
                e.description = Some(format!("Printed bracket {i} on farm B"));
                e.context = Context {
                    correlation_id: Some("run-7".into()),
                    ..Context::default()
                };
                if i == 4 {
                    e.actor.kind = ActorType::System;
                }
                e
            })
            .collect()
    }

    /// What a list answers: the page's actions, the next cursor's presence, the total.
    async fn answers(
        store: &SqliteStore,
        org: OrgKey,
        filter: EventFilter,
    ) -> (Vec<String>, bool, u64) {
        let mut seen = Vec::new();
        let mut request = page(filter.clone());
        let first = store.list(org, &request).await.unwrap();
        let (total, more) = (first.total, first.next_cursor.is_some());
        let mut next = Some(first);
        while let Some(p) = next.take() {
            seen.extend(
                p.entries
                    .iter()
                    .map(|e| format!("{}#{}", e.event.action, e.seq)),
            );
            if let Some(cursor) = p.next_cursor {
                request.cursor = Some(cursor);
                next = Some(store.list(org, &request).await.unwrap());
            }
        }
        assert_eq!(store.count(org, &filter).await.unwrap(), (total, true));
        (seen, more, total)
    }

    fn filters() -> Vec<EventFilter> {
        vec![
            EventFilter::default(),
            EventFilter {
                action: Some("job.print".into()),
                ..EventFilter::default()
            },
            EventFilter {
                actor_types: ActorType::ALL.to_vec(),
                ..EventFilter::default()
            },
            EventFilter {
                q: Some("bracket 3".into()),
                ..EventFilter::default()
            },
            EventFilter {
                q: Some("farm b".into()),
                actor: Some("ada@example.com".into()),
                ..EventFilter::default()
            },
            EventFilter {
                from: Some(T0 + 1),
                to: Some(T0 + 3),
                ..EventFilter::default()
            },
        ]
    }

    /// Entries the index has not taken in are found by every filter, page by page and counted,
    /// exactly as once it has: the readers check them directly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_not_yet_indexed_are_found_by_every_filter() {
        let (_dir, path, store, org) = acme().await;
        // An entry the index has taken in, so that the answers mix both kinds.
        let mut first = event("job.print", T0 - 10);
        first.description = Some("Printed bracket 0 on farm A".into());
        store.append(org, request(vec![first])).await.unwrap();
        caught_up(&store).await;
        assert_eq!(indexed_rows(&path, org), 1);

        let held = hold_index(&path);
        store.append(org, request(events())).await.unwrap();
        let mut before = Vec::new();
        for filter in filters() {
            before.push(answers(&store, org, filter).await);
        }
        let correlated = store.correlated(org, "run-7", 10).await.unwrap();
        assert_eq!(correlated.len(), 5);
        assert_eq!(
            indexed_rows(&path, org),
            1,
            "the index took nothing in meanwhile"
        );
        // What the filters found, spelled out for two of them.
        assert_eq!(before[0].2, 5, "every entry but the system one");
        assert_eq!(before[1].0, ["job.print#4", "job.print#2", "job.print#1"]);
        assert_eq!(before[3].0, ["user.login#5"]);

        drop(held);
        caught_up(&store).await;
        assert_eq!(indexed_rows(&path, org), 6);
        for (filter, before) in filters().into_iter().zip(before) {
            assert_eq!(
                answers(&store, org, filter.clone()).await,
                before,
                "{filter:?}"
            );
        }
        assert_eq!(
            store.correlated(org, "run-7", 10).await.unwrap(),
            correlated
        );
    }

    /// A graceful stop leaves the index nothing to take in at the next start (where every read
    /// would check the backlog's entries one by one until the indexer caught up): here the
    /// indexer is held off until the stop has begun.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_graceful_stop_leaves_nothing_for_the_index_to_take_in() {
        let (_dir, path, store, org) = acme().await;
        let held = hold_index(&path);
        store.append(org, request(events())).await.unwrap();
        let newest = newest_queued(&Connection::open(&path).unwrap()).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            drop(held);
        });
        store.shutdown().await.unwrap();
        assert_eq!(store.search.taken_in(), newest);
        release.join().unwrap();
        drop(store);
        assert_eq!(indexed_rows(&path, org), 5);
        // And the queue keeps only its newest row (whose id the next one follows).
        let queued: (i64, i64) = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*), max(id) FROM search_queue", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(queued, (1, newest));
    }

    /// An erased value is not found through the index's old rows while the index has yet to take
    /// the rewrite in, nor after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rewrite_not_yet_indexed_hides_the_old_rows() {
        let (_dir, path, store, org) = acme().await;
        store.append(org, request(events())).await.unwrap();
        caught_up(&store).await;
        let by_ada = EventFilter {
            actor: Some("ada@example.com".into()),
            ..EventFilter::default()
        };
        assert_eq!(store.count(org, &by_ada).await.unwrap(), (4, true));

        let held = hold_index(&path);
        // The rewrite alone, without the clean-up that waits for the index.
        let dict = store.dict.clone();
        let pseudonym = "person-1".to_string();
        let erasure = Erasure {
            person: Person {
                email: Some("ada@example.com".into()),
                ..Person::default()
            },
            pseudonym: pseudonym.clone(),
            record: stele_core::chain::erasure_record(&pseudonym, None, T0 + 100),
            salt: [5; 16],
        };
        store
            .writer
            .run(move |tx| crate::erasure::erase_person(tx, &dict, org, erasure, T0 + 100))
            .await
            .unwrap();
        assert_eq!(store.count(org, &by_ada).await.unwrap(), (0, true));
        assert!(
            store
                .list(org, &page(by_ada.clone()))
                .await
                .unwrap()
                .entries
                .is_empty()
        );
        let verified = store.verify(org, None).await.unwrap();
        assert!(
            verified.ok,
            "the erasure's record vouches from the unindexed tail: {verified:?}"
        );
        drop(held);
        caught_up(&store).await;
        assert_eq!(store.count(org, &by_ada).await.unwrap(), (0, true));
    }

    /// The index file is rebuilt from the entries when it is missing or belongs to another
    /// database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_or_foreign_index_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let other = dir.path().join("other.db");
        let org = {
            let store = SqliteStore::open(&path).unwrap();
            let org = store.create_org("acme").await.unwrap().key;
            store.append(org, request(events())).await.unwrap();
            caught_up(&store).await;
            SqliteStore::open(&other).unwrap();
            org
        };
        let search = |filter: EventFilter| async {
            let store = SqliteStore::open(&path).unwrap();
            let found = answers(&store, org, filter).await;
            assert_eq!(indexed_rows(&path, org), 5);
            found
        };
        let before = search(EventFilter::default()).await;
        for sidecar in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}-search{sidecar}", path.display()));
        }
        assert_eq!(search(EventFilter::default()).await, before);
        // The other database's (empty) index in its place.
        std::fs::copy(path_of(&other), path_of(&path)).unwrap();
        assert_eq!(search(EventFilter::default()).await, before);
    }

    /// A database of schema 12 (its search tables inside it) is upgraded: the tables leave it and
    /// the index file is built from its entries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_with_the_index_inside_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let (org, before) = {
            let store = SqliteStore::open(&path).unwrap();
            let org = store.create_org("acme").await.unwrap().key;
            store.append(org, request(events())).await.unwrap();
            (org, answers(&store, org, EventFilter::default()).await)
        };
        {
            // Back to schema 12 as that version left it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "DROP TABLE event_keys;
                 DROP TABLE streams;
                 DROP TABLE stream_cursors;
                 DROP TABLE merkle_subtrees;
                 DROP TABLE merkle_subtrees_to_fill;
                 DROP TABLE verified_points;
                 DROP TABLE search_queue;
                 DELETE FROM meta WHERE key = 'search_index_id';
                 CREATE VIRTUAL TABLE entry_terms USING fts5(
                     terms, tokenize = 'ascii', content = '', detail = 'none', columnsize = 0);
                 CREATE VIRTUAL TABLE entries_fts USING fts5(
                     description, tokenize = 'trigram', content = '', detail = 'none',
                     columnsize = 0);
                 PRAGMA user_version = 12;",
            )
            .unwrap();
        }
        for sidecar in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}-search{sidecar}", path.display()));
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(indexed_rows(&path, org), 5);
        assert_eq!(answers(&store, org, EventFilter::default()).await, before);
        let conn = Connection::open(&path).unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('entry_terms', 'entries_fts')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the search tables left the database");
    }

    /// Copies of a closed database's file and its index file (each without a WAL: closing
    /// folded them in).
    fn keep_copy(database: &Path, suffix: &str) {
        for file in [database.to_path_buf(), path_of(database)] {
            std::fs::copy(&file, format!("{}{suffix}", file.display())).unwrap();
        }
    }

    fn restore(file: &Path, suffix: &str) {
        for sidecar in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{sidecar}", file.display()));
        }
        std::fs::copy(format!("{}{suffix}", file.display()), file).unwrap();
    }

    /// An index file out of step with its database (each restored from a different moment) is
    /// rebuilt: one that missed queue rows the writer has since deleted, and one that took in
    /// rows the database no longer has.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_out_of_step_with_its_database_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let closed = |store: SqliteStore| async move {
            caught_up(&store).await;
            drop(store);
            // The threads close their connections within a second of the drop.
            tokio::time::sleep(Duration::from_millis(1200)).await;
        };
        let org = {
            let store = SqliteStore::open(&path).unwrap();
            let org = store.create_org("acme").await.unwrap().key;
            store.append(org, request(events())).await.unwrap();
            closed(store).await;
            org
        };
        keep_copy(&path, ".early");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.append(org, request(events())).await.unwrap();
            caught_up(&store).await;
            // The next group deletes the queue rows the index has taken in.
            store.append(org, request(events())).await.unwrap();
            closed(store).await;
        }
        let queue_start: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT min(id) FROM search_queue", [], |r| r.get(0))
            .unwrap();
        assert!(queue_start > 6, "the writer forgot the early rows");

        // The early index beside the late database: it misses rows no longer queued.
        restore(&path_of(&path), ".early");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(indexed_rows(&path, org), 15);
        assert_eq!(answers(&store, org, EventFilter::default()).await.2, 12);
        closed(store).await;

        // The early database beside the late index: the index holds rows it never queued.
        restore(&path, ".early");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(indexed_rows(&path, org), 5);
        assert_eq!(answers(&store, org, EventFilter::default()).await.2, 4);
    }

    /// Under ingest, with the indexer taking rows in as it pleases, every acknowledged entry is
    /// found at once by an exact filter and by a description search, and counted once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_entry_is_found_at_once_under_ingest() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("stele.db")).unwrap());
        let org = store.create_org("acme").await.unwrap().key;
        let stop = Arc::new(AtomicBool::new(false));
        let background = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut batches = 0;
                while !stop.load(Ordering::Relaxed) {
                    let noise = (0..200).map(|i| event("job.print", T0 + i)).collect();
                    store.append(org, request(noise)).await.unwrap();
                    batches += 1;
                }
                batches
            })
        };
        for i in 0..150 {
            let mut e = event("user.login", T0 + 1_000 + i);
            e.entity_ids = vec![format!("probe-{i}")];
            e.description = Some(format!("probe token zq{i}x"));
            store.append(org, request(vec![e])).await.unwrap();
            for filter in [
                EventFilter {
                    entity_id: Some(format!("probe-{i}")),
                    ..EventFilter::default()
                },
                EventFilter {
                    q: Some(format!("zq{i}x")),
                    ..EventFilter::default()
                },
            ] {
                let page = store.list(org, &page(filter.clone())).await.unwrap();
                assert_eq!(page.entries.len(), 1, "probe {i}, {filter:?}");
                // A count has a wall-clock budget of 5 ms (read.rs); on a machine busy with other
                // tests it can run out, and its total is then a lower bound, never more.
                let counted_once =
                    |(total, exact): (u64, bool)| total == 1 || (!exact && total == 0);
                assert!(
                    counted_once((page.total, page.total_exact)),
                    "probe {i}: {} ({})",
                    page.total,
                    page.total_exact
                );
                let count = store.count(org, &filter).await.unwrap();
                assert!(counted_once(count), "probe {i}: {count:?}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        let batches = background.await.unwrap();
        assert!(batches > 0);
        caught_up(&store).await;
    }
}
