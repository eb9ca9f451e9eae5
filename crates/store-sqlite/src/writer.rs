//! The single writer: one thread owns the write connection, gathers every append request that is
//! waiting into one transaction (group commit), assigns `seq` numbers, and answers each request
//! only after that transaction is synced to disk.
//!
//! One fsync then covers many requests, which is what makes durable ingest fast; and because
//! exactly one thread assigns `seq` inside the transaction, each organization's sequence is
//! gap-free by construction. The hash chain is linked here too, in `seq` order: everything else
//! (digests, the stored JSON and its packed body, the search terms) arrives made by the caller's
//! task ([`RowParts`]), so this thread only links entries into the chain and writes them. The
//! search index is not written here: each entry gets a row of `search_queue`, and the indexer
//! (`search.rs`) writes the index behind the commit, on a thread and in a file of its own.
//! A request that is refused (an idempotency conflict, an organization that does not exist) is
//! refused before it writes anything, so it never takes its neighbours down with it; a database
//! failure rolls the whole group back, so no request is ever half-written (one whose events span
//! organizations included) and no acknowledged event is lost.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use stele_core::Seq;
use stele_core::chain::{self, SealedEvent};
use stele_core::merkle::{self, Frontier, Hash};
use stele_core::time::{Millis, now_millis};
use stele_store::idempotency::{self, IDEMPOTENCY_RETENTION_MS};
use stele_store::proofs;
use stele_store::{
    AppendOutcome, AppendRequest, OrgKey, PreparedEvent, Receipt, Result, StoreError,
};
use tokio::sync::{mpsc, oneshot};

use crate::codec::{description_rowid, entry_id, outcome_code, pk_floor, pk_of_id};
use crate::dict::Dict;
use crate::error::map_err;
use crate::packed;
use crate::schema::*;
use crate::search::{self, Change, Feed, Prepared};
use crate::subtrees;
use crate::terms;

/// How many events one group commit may gather before it commits.
const MAX_GROUP_EVENTS: usize = 50_000;
/// How often the writer forgets idempotency keys older than the retention.
const IDEMPOTENCY_SWEEP_EVERY_MS: Millis = 10 * 60 * 1000;
/// Events' own keys are grouped by the UTC day they were recorded on (`event_keys.day`).
const DAY_MS: Millis = 24 * 3600 * 1000;
/// At most this many expired event keys are forgotten in one group commit: a day's keys can be
/// millions, and forgetting them in one go would hold up the group that does it.
const EVENT_KEYS_SWEPT_PER_GROUP: i64 = 5_000;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A small write that rides in the next group's transaction (inside a savepoint of its own) and
/// is answered once that transaction commits: given the transaction (`None` if the group failed
/// before its turn), it returns what answers its caller, given how the commit went.
type Joined = Box<dyn FnOnce(Option<&Transaction<'_>>) -> Answer + Send>;
type Answer = Box<dyn FnOnce(std::result::Result<(), &StoreError>) + Send>;

enum Command {
    Append {
        org: OrgKey,
        request: AppendRequest,
        /// Each event's row parts, made on the caller's task.
        parts: Vec<RowParts>,
        reply: oneshot::Sender<Result<AppendOutcome>>,
    },
    /// Any other write (organizations, keys): runs alone, in its own transaction.
    Run(Job),
    /// A small write that shares the group's commit ([`Writer::run_in_group`]).
    Join(Joined),
}

#[derive(Clone)]
pub struct Writer {
    commands: mpsc::Sender<Command>,
}

impl Writer {
    pub fn spawn(conn: Connection, dict: Arc<Dict>, search: Feed) -> std::io::Result<Writer> {
        let (commands, rx) = mpsc::channel(4096);
        let state = WriterState {
            conn,
            dict,
            facets_seen: HashMap::new(),
            last_sweep: 0,
            event_keys_kept_from: 0,
            search,
            queue_forgotten_to: 0,
        };
        std::thread::Builder::new()
            .name("stele-sqlite-writer".into())
            .spawn(move || state.run(rx))?;
        Ok(Writer { commands })
    }

    pub async fn append(&self, org: OrgKey, request: AppendRequest) -> Result<AppendOutcome> {
        // The row parts are made here, on the caller's task, like the rest of the request's
        // serialization: the writer thread only links entries into the chain and writes them.
        let parts = request
            .events
            .iter()
            .map(|e| RowParts::of(e.org_or(org), e))
            .collect();
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append {
            org,
            request,
            parts,
            reply,
        })
        .await?;
        answer.await.map_err(|_| shutting_down())?
    }

    /// Runs `f` in its own immediate transaction on the writer thread and commits if it succeeds.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.run_on_connection(move |conn| in_transaction(conn, f))
            .await
    }

    /// Runs `f` in the writer's next group transaction, after the group's appends, and answers
    /// once that transaction commits: for small, frequent writes (a log stream's delivery) that
    /// would otherwise cost a commit and an fsync of their own and split the ingest's group in
    /// two. `f` runs inside a savepoint: its error undoes only its own writes, and the group goes
    /// on; a failure of the group's commit answers `f`'s caller with that failure.
    pub async fn run_in_group<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Joined = Box::new(move |tx: Option<&Transaction<'_>>| {
            let result = tx.map(|tx| in_savepoint(tx, f));
            Box::new(move |committed: std::result::Result<(), &StoreError>| {
                let _ = reply.send(match (committed, result) {
                    (Ok(()), Some(result)) => result,
                    (Ok(()), None) => Err(StoreError::Unavailable(
                        "the write was not run: its group failed".into(),
                    )),
                    (Err(error), _) => Err(clone_err(error)),
                });
            })
        });
        self.send(Command::Join(job)).await?;
        answer.await.map_err(|_| shutting_down())?
    }

    /// Runs `f` on the writer's connection outside any transaction (for pragmas such as a WAL
    /// checkpoint, which cannot run inside one).
    pub async fn run_on_connection<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let _ = reply.send(f(conn));
        });
        self.send(Command::Run(job)).await?;
        answer.await.map_err(|_| shutting_down())?
    }

    /// [`Writer::run`] for a plain thread outside the async runtime (the maintenance thread).
    pub fn run_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let _ = reply.send(in_transaction(conn, f));
        });
        self.commands
            .blocking_send(Command::Run(job))
            .map_err(|_| shutting_down())?;
        answer.blocking_recv().map_err(|_| shutting_down())?
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| shutting_down())
    }
}

/// The UTC day `ms` falls on, as `event_keys.day` counts them. A lookup reads today's keys and
/// yesterday's, so a key is kept from 24 to 48 hours.
fn day_of(ms: Millis) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Forgets up to [`EVENT_KEYS_SWEPT_PER_GROUP`] event keys of days before `day`, the oldest
/// first (the left end of the table's B-tree); returns how many.
fn forget_event_keys_before(tx: &Transaction<'_>, day: i64) -> Result<i64> {
    let forgotten = tx
        .prepare_cached(
            "DELETE FROM event_keys WHERE (day, org_id, key) IN
               (SELECT day, org_id, key FROM event_keys WHERE day < ? LIMIT ?)",
        )
        .and_then(|mut s| s.execute(params![day, EVENT_KEYS_SWEPT_PER_GROUP]))
        .map_err(map_err)?;
    Ok(forgotten as i64)
}

/// Runs `f` in an immediate transaction and commits if it succeeds.
fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    let value = f(&tx)?;
    tx.commit().map_err(map_err)?;
    Ok(value)
}

/// Runs `f` inside a savepoint of `tx`: released if it succeeds, rolled back if it fails.
fn in_savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    tx.execute_batch("SAVEPOINT joined").map_err(map_err)?;
    let result = f(tx);
    let end = match result {
        Ok(_) => "RELEASE joined",
        Err(_) => "ROLLBACK TO joined; RELEASE joined",
    };
    tx.execute_batch(end).map_err(map_err)?;
    result
}

fn shutting_down() -> StoreError {
    StoreError::Unavailable("the writer has stopped".into())
}

struct PendingAppend {
    org: OrgKey,
    request: AppendRequest,
    parts: Vec<RowParts>,
    reply: oneshot::Sender<Result<AppendOutcome>>,
}

struct WriterState {
    conn: Connection,
    dict: Arc<Dict>,
    /// Facet rows known to exist, per organization (loaded on first use).
    facets_seen: HashMap<OrgKey, HashSet<i64>>,
    last_sweep: Millis,
    /// The day from which every event key is known to be kept (`event_keys.day`): older ones
    /// are being forgotten, a few thousand a group, while this is behind yesterday.
    event_keys_kept_from: i64,
    /// The indexer: told of each group's entries once they commit.
    search: Feed,
    /// The watermark up to which `search_queue` rows were last deleted.
    queue_forgotten_to: i64,
}

/// One organization's chain position, loaded from `chain_state` at the start of a group (inside
/// the write lock, so a second process writing the same file is seen) and saved at its end.
pub(crate) struct ChainCursor {
    org_id: String,
    seq: Seq,
    head: Hash,
    frontier: Frontier,
    /// Whether this group linked an entry into it: only then is it saved (a request refused
    /// after its organizations were looked up leaves their `chain_state` as it was).
    moved: bool,
}

/// Dictionary values a transaction added (id, kind, value), published once it commits.
pub(crate) type NewDictValues = Vec<(i64, i64, Arc<str>)>;

/// What one group transaction has created but not yet committed.
#[derive(Default)]
struct GroupState {
    /// Where each organization's chain stands after this group's entries so far.
    chains: HashMap<OrgKey, ChainCursor>,
    /// Next free `pk` per millisecond touched by this group.
    next_pk: HashMap<i64, i64>,
    new_dict: NewDictValues,
    /// The group's entries' search index rows, handed to the indexer once the group commits.
    search_rows: Vec<Prepared>,
    new_facets: Vec<(OrgKey, i64)>,
}

impl WriterState {
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut appends = Vec::new();
            let mut joined = Vec::new();
            let mut events = 0;
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append {
                        org,
                        request,
                        parts,
                        reply,
                    } => {
                        events += request.events.len();
                        appends.push(PendingAppend {
                            org,
                            request,
                            parts,
                            reply,
                        });
                    }
                    Command::Join(job) => joined.push(job),
                    Command::Run(job) => {
                        // Keep arrival order: commit what was gathered before running the job.
                        self.commit_group(
                            std::mem::take(&mut appends),
                            std::mem::take(&mut joined),
                        );
                        job(&mut self.conn);
                        // The job may have queued search index changes (Stele's own entries,
                        // an erasure's rewrites, pruning).
                        self.search.hand_over(Vec::new());
                    }
                }
                if events < MAX_GROUP_EVENTS {
                    next = rx.try_recv().ok();
                }
            }
            self.commit_group(appends, joined);
            stele_store::metrics::writer_queue(rx.len());
        }
        tracing::debug!("sqlite writer stopped");
    }

    /// Writes the gathered appends, then the joined writes, in one transaction, and answers
    /// each once it commits.
    fn commit_group(&mut self, mut appends: Vec<PendingAppend>, joined: Vec<Joined>) {
        if appends.is_empty() && joined.is_empty() {
            return;
        }
        let mut answers = Vec::with_capacity(joined.len());
        let mut joined = joined.into_iter();
        let now = now_millis();
        let started = Instant::now();
        let events = appends.iter().map(|p| p.request.events.len()).sum();
        let mut group = GroupState::default();
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            if now - self.last_sweep > IDEMPOTENCY_SWEEP_EVERY_MS {
                tx.execute(
                    "DELETE FROM idempotency WHERE created_ms < ?",
                    [now - IDEMPOTENCY_RETENTION_MS],
                )
                .map_err(map_err)?;
            }
            let keep_from = day_of(now) - 1;
            let event_keys_swept = self.event_keys_kept_from < keep_from
                && forget_event_keys_before(&tx, keep_from)? < EVENT_KEYS_SWEPT_PER_GROUP;
            let taken_in = self.search.taken_in();
            if taken_in > self.queue_forgotten_to {
                search::forget_taken_in(&tx, taken_in)?;
            }
            let mut outcomes = Vec::with_capacity(appends.len());
            for pending in &mut appends {
                outcomes.push(append_request(
                    &tx,
                    &self.dict,
                    &mut self.facets_seen,
                    &mut group,
                    pending,
                    now,
                )?);
            }
            save_chains(&tx, &group.chains)?;
            for job in joined.by_ref() {
                answers.push(job(Some(&tx)));
            }
            tx.commit().map_err(map_err)?;
            self.queue_forgotten_to = taken_in;
            if event_keys_swept {
                self.event_keys_kept_from = keep_from;
            }
            Ok(outcomes)
        })();
        // A group of joined writes alone is not an ingest's group: it would skew the
        // events-per-group figures.
        if !appends.is_empty() || result.is_err() {
            stele_store::metrics::group_commit(events, started, result.is_ok());
        }
        match result {
            Ok(outcomes) => {
                self.search
                    .hand_over(std::mem::take(&mut group.search_rows));
                self.keep_wal_bounded();
                if now - self.last_sweep > IDEMPOTENCY_SWEEP_EVERY_MS {
                    self.last_sweep = now;
                }
                for (id, kind, value) in group.new_dict {
                    self.dict.publish(id, kind, value);
                }
                for (org, dict_id) in group.new_facets {
                    self.facets_seen.entry(org).or_default().insert(dict_id);
                }
                for (pending, outcome) in appends.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(outcome);
                }
                for answer in answers {
                    answer(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "group commit failed; no event of the group was stored");
                // Facet rows of a rolled-back transaction are gone; forget what we loaded.
                self.facets_seen.clear();
                for pending in appends {
                    let _ = pending.reply.send(Err(clone_err(&error)));
                }
                answers.extend(joined.map(|job| job(None)));
                for answer in answers {
                    answer(Err(&error));
                }
            }
        }
    }
}

impl WriterState {
    /// The upkeep thread's PASSIVE checkpoints copy the WAL into the database but can never let
    /// it start over while this writer keeps appending, so under sustained ingest the file would
    /// grow without bound. Past a size, the writer itself (between two groups) truncates it; most
    /// pages are already copied, so this is quick. It does not wait for readers: a long read (an
    /// export, a retention scan) holding an old snapshot would otherwise stall every append
    /// behind it, so the checkpoint gives up at once and the next group tries again.
    fn keep_wal_bounded(&mut self) {
        let Some(path) = self.conn.path().map(|p| format!("{p}-wal")) else {
            return;
        };
        if !std::fs::metadata(&path).is_ok_and(|m| m.len() > WAL_TRUNCATE_BYTES) {
            return;
        }
        let truncated = self
            .conn
            .busy_timeout(std::time::Duration::ZERO)
            .and_then(|()| {
                self.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        r.get::<_, i64>(0)
                    })
            });
        if let Err(error) = wait_when_busy(&self.conn) {
            tracing::warn!(%error, "restoring the writer's busy timeout failed");
        }
        match truncated {
            // 1: a reader still holds an older snapshot; the next group tries again.
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy => {}
            Err(error) => {
                tracing::warn!(%error, "truncating the WAL failed; will retry after the next group")
            }
        }
    }
}

/// The WAL size past which the writer truncates it (see `keep_wal_bounded`).
pub(crate) const WAL_TRUNCATE_BYTES: u64 = 64 * 1024 * 1024;

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::CleanupPending(m) => StoreError::CleanupPending(m.clone()),
        StoreError::Other(m) => StoreError::Unavailable(m.clone()),
    }
}

/// Writes one request's events into the group transaction.
///
/// Everything that can refuse a request (an organization that does not exist, an idempotency
/// conflict) is decided before the request writes anything, and comes back as the inner `Err`:
/// the group goes on without it. An outer `Err` is a database failure in the middle of writing;
/// the caller then rolls the whole group back, so no request is ever half-written, however many
/// organizations its events are for. (Savepoints per request would do the same, at the price of
/// a savepoint per request; when the search index was written here, each one also made FTS5
/// flush its in-memory index.)
fn append_request(
    tx: &Transaction<'_>,
    dict: &Dict,
    facets_seen: &mut HashMap<OrgKey, HashSet<i64>>,
    group: &mut GroupState,
    pending: &mut PendingAppend,
    now: Millis,
) -> Result<Result<AppendOutcome>> {
    // Every organization the events join must exist before the first is written: found missing
    // halfway, it would fail the whole group instead of this request alone. Reading the chain
    // positions now costs nothing later (the group keeps them).
    let home = pending.org;
    let mut checked = HashSet::new();
    for org in pending.request.events.iter().map(|e| e.org_or(home)) {
        if checked.insert(org) {
            match chain_cursor(tx, group, org) {
                Ok(_) => {}
                Err(StoreError::NotFound) => return Ok(Err(StoreError::NotFound)),
                Err(e) => return Err(e),
            }
        }
    }
    idempotency::append(
        &mut GroupLedger {
            tx,
            dict,
            facets_seen,
            group,
            parts: &mut pending.parts,
            now,
        },
        home,
        &pending.request,
    )
}

/// The idempotency records and entries of the organizations a request touches, as the group
/// transaction sees them.
struct GroupLedger<'a, 'tx> {
    tx: &'a Transaction<'tx>,
    dict: &'a Dict,
    facets_seen: &'a mut HashMap<OrgKey, HashSet<i64>>,
    group: &'a mut GroupState,
    /// The request's events' row parts, by index; each is taken as its event is written.
    parts: &'a mut [RowParts],
    now: Millis,
}

impl idempotency::Ledger for GroupLedger<'_, '_> {
    type Error = StoreError;

    fn find(&mut self, org: OrgKey, key: &str) -> Result<Option<idempotency::Record>> {
        find_idempotent(self.tx, org, key)
    }

    fn remember(
        &mut self,
        org: OrgKey,
        key: String,
        fingerprint: Option<&[u8; 32]>,
        receipts: &[Receipt],
    ) -> Result<()> {
        remember(self.tx, org, &key, fingerprint, receipts, self.now)
    }

    fn find_event(&mut self, org: OrgKey, key: &str) -> Result<Option<Receipt>> {
        // Today's keys, then yesterday's: two lookups of one row each (`day IN (?, ?)` would
        // build a temporary table for its list at every call).
        let today = day_of(self.now);
        let mut lookup = self
            .tx
            .prepare_cached(
                "SELECT pk, seq FROM event_keys WHERE day = ? AND org_id = ? AND key = ?",
            )
            .map_err(map_err)?;
        for day in [today, today - 1] {
            let found = lookup
                .query_row(params![day, org.get(), key], |r| {
                    Ok(Receipt::new(entry_id(r.get(0)?), Seq::new(r.get(1)?)))
                })
                .optional()
                .map_err(map_err)?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    fn remember_event(&mut self, org: OrgKey, key: &str, receipt: &Receipt) -> Result<()> {
        let pk = pk_of_id(&receipt.id)
            .ok_or_else(|| StoreError::Other(format!("`{}` is not an entry id", receipt.id)))?;
        self.tx
            .prepare_cached(
                "INSERT INTO event_keys (day, org_id, key, pk, seq) VALUES (?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    day_of(self.now),
                    org.get(),
                    key,
                    pk,
                    receipt.seq.get()
                ])
            })
            .map_err(map_err)?;
        Ok(())
    }

    fn write(&mut self, index: usize, org: OrgKey, event: &PreparedEvent) -> Result<Receipt> {
        insert_event(
            self.tx,
            self.dict,
            self.facets_seen,
            self.group,
            org,
            NewEntry {
                event,
                parts: std::mem::take(&mut self.parts[index]),
            },
            self.now,
        )
    }
}

fn find_idempotent(
    tx: &Transaction<'_>,
    org: OrgKey,
    key: &str,
) -> Result<Option<idempotency::Record>> {
    let row: Option<(Option<Vec<u8>>, String)> = tx
        .prepare_cached(
            "SELECT fingerprint, receipts FROM idempotency WHERE org_id = ? AND key = ?",
        )
        .and_then(|mut s| {
            s.query_row(params![org.get(), key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(map_err)?;
    row.map(|(fingerprint, receipts)| {
        let receipts = idempotency::decode_receipts(&receipts)?;
        Ok(idempotency::Record {
            fingerprint,
            receipts,
        })
    })
    .transpose()
}

fn remember(
    tx: &Transaction<'_>,
    org: OrgKey,
    key: &str,
    fingerprint: Option<&[u8; 32]>,
    receipts: &[Receipt],
    now: Millis,
) -> Result<()> {
    let receipts = idempotency::encode_receipts(receipts)?;
    tx.prepare_cached(
        "INSERT INTO idempotency (org_id, key, fingerprint, receipts, created_ms)
         VALUES (?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            org.get(),
            key,
            fingerprint.map(|f| &f[..]),
            receipts,
            now
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

/// Writes Stele's own entries in a transaction of their own rather than a group commit (an
/// erasure's record, a print-log change's audit entries): each prepared here, linked into the
/// chain, and queued for the search index (the indexer reads them back). Returns the receipts
/// and the dictionary values the transaction added (to publish once it commits).
pub(crate) fn insert_own_entries(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    events: Vec<SealedEvent>,
    now: Millis,
) -> Result<(Vec<Receipt>, NewDictValues)> {
    let mut group = GroupState::default();
    let mut facets_seen: HashMap<OrgKey, HashSet<i64>> = HashMap::new();
    let mut receipts = Vec::with_capacity(events.len());
    for sealed in events {
        let event = PreparedEvent::new(sealed);
        let parts = RowParts::of(org, &event);
        receipts.push(insert_event(
            tx,
            dict,
            &mut facets_seen,
            &mut group,
            org,
            NewEntry {
                event: &event,
                parts,
            },
            now,
        )?);
    }
    save_chains(tx, &group.chains)?;
    Ok((receipts, group.new_dict))
}

/// One entry to write: the prepared event and its row parts (both made before the writer).
struct NewEntry<'a> {
    event: &'a PreparedEvent,
    parts: RowParts,
}

/// What the caller's task makes of an event for its row, so that the writer thread does not:
/// its search terms and its `body` column, packed (packed.rs).
struct RowParts {
    terms: String,
    body: Value,
}

/// What a request's row parts are left as once the writer has taken them.
impl Default for RowParts {
    fn default() -> RowParts {
        RowParts {
            terms: String::new(),
            body: Value::Null,
        }
    }
}

impl RowParts {
    fn of(org: OrgKey, event: &PreparedEvent) -> RowParts {
        RowParts {
            terms: terms::entry_terms(org, &event.sealed.event),
            body: packed::pack(event.body()),
        }
    }
}

fn insert_event(
    tx: &Transaction<'_>,
    dict: &Dict,
    facets_seen: &mut HashMap<OrgKey, HashSet<i64>>,
    group: &mut GroupState,
    org: OrgKey,
    entry: NewEntry<'_>,
    now: Millis,
) -> Result<Receipt> {
    let NewEntry {
        event: prepared,
        parts: RowParts { terms, body },
    } = entry;
    let sealed = &prepared.sealed;
    let event = &sealed.event;
    let mut intern = |kind: i64, value: &str| -> Result<i64> {
        let id = intern(tx, dict, group, kind, value)?;
        note_facet(tx, facets_seen, group, org, id)?;
        Ok(id)
    };
    let action = intern(DICT_ACTION, &event.action)?;
    let detailed_action = event
        .detailed_action
        .as_deref()
        .map(|v| intern(DICT_DETAILED_ACTION, v))
        .transpose()?;
    let channel = intern(DICT_CHANNEL, &event.channel)?;
    let entity_type = event
        .entity
        .as_ref()
        .map(|e| intern(DICT_ENTITY_TYPE, &e.kind))
        .transpose()?;
    intern(DICT_ACTOR_TYPE, event.actor.kind.as_str())?;
    // Related entities' types are facets too (the filter finds them through their terms).
    for related in &event.related_entities {
        intern(DICT_ENTITY_TYPE, &related.kind)?;
    }

    let pk = next_pk(tx, group, event.occurred_at)?;
    let id = entry_id(pk);
    let chain = chain_cursor(tx, group, org)?;
    let seq = chain.seq.next();
    let hash = chain::entry_hash(
        &chain.head,
        &chain.org_id,
        seq,
        &id,
        now,
        &sealed.event_digest,
    );
    chain.seq = seq;
    chain.head = hash;
    let mut closed = Vec::new();
    chain
        .frontier
        .push_closing(merkle::leaf_hash(&hash), |t, h| {
            if proofs::is_stored(&t) {
                closed.push((t, *h));
            }
        });
    chain.moved = true;
    if !closed.is_empty() {
        subtrees::append(tx, org, &closed)?;
    }

    tx.prepare_cached(
        "INSERT INTO entries (pk, org_id, seq, occurred_ms, recorded_ms, action,
             detailed_action, channel, actor_type, outcome, entity_type, correlation_id,
             description, body, personal, salt, personal_digest, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            pk,
            org.get(),
            seq.get(),
            event.occurred_at,
            now,
            action,
            detailed_action,
            channel,
            event.actor.kind.code(),
            outcome_code(event.outcome),
            entity_type,
            event.context.correlation_id,
            event.description,
            body,
            prepared.personal(),
            sealed.seal.to_bytes(),
            &sealed.personal_digest[..],
            &hash[..],
        ])
    })
    .map_err(map_err)?;
    let queue_id = search::enqueue(tx, org, seq.get(), pk, Change::Written)?;
    group.search_rows.push(Prepared {
        queue_id,
        pk,
        description_rowid: description_rowid(org.get(), seq.get()),
        terms,
        description: event.description.clone(),
    });
    Ok(Receipt::new(id, seq))
}

/// `pk = occurred_ms << 21 | n`: the next `n` for this millisecond (see schema.rs).
fn next_pk(tx: &Transaction<'_>, group: &mut GroupState, occurred_ms: Millis) -> Result<i64> {
    let next = match group.next_pk.get(&occurred_ms) {
        Some(next) => *next,
        None => {
            let first = pk_floor(occurred_ms);
            tx.prepare_cached("SELECT max(pk) FROM entries WHERE pk >= ? AND pk < ?")
                .and_then(|mut s| {
                    s.query_row([first, pk_floor(occurred_ms + 1)], |r| {
                        r.get::<_, Option<i64>>(0)
                    })
                })
                .map_err(map_err)?
                .map_or(first, |max| max + 1)
        }
    };
    if next >= pk_floor(occurred_ms + 1) {
        return Err(StoreError::Unavailable(
            "more than 2,097,152 entries for one millisecond".into(),
        ));
    }
    group.next_pk.insert(occurred_ms, next + 1);
    Ok(next)
}

fn chain_cursor<'g>(
    tx: &Transaction<'_>,
    group: &'g mut GroupState,
    org: OrgKey,
) -> Result<&'g mut ChainCursor> {
    use std::collections::hash_map::Entry;
    match group.chains.entry(org) {
        Entry::Occupied(e) => Ok(e.into_mut()),
        Entry::Vacant(e) => {
            // A deleted organization takes no more entries: its deletion began in an earlier
            // transaction of this same writer, and its batches must not leave any behind.
            let org_id: String = tx
                .prepare_cached("SELECT id FROM orgs WHERE key = ? AND deleted_ms IS NULL")
                .and_then(|mut s| s.query_row([org.get()], |r| r.get(0)))
                .map_err(map_err)?;
            let state: Option<(Seq, Vec<u8>, String)> = tx
                .prepare_cached("SELECT seq, head, frontier FROM chain_state WHERE org_id = ?")
                .and_then(|mut s| {
                    s.query_row([org.get()], |r| {
                        Ok((Seq::new(r.get(0)?), r.get(1)?, r.get(2)?))
                    })
                    .optional()
                })
                .map_err(map_err)?;
            let cursor = match state {
                None => ChainCursor {
                    head: chain::genesis(&org_id),
                    org_id,
                    seq: Seq::BEFORE_FIRST,
                    frontier: Frontier::new(),
                    moved: false,
                },
                Some((seq, head, frontier)) => ChainCursor {
                    org_id,
                    seq,
                    head: head.try_into().map_err(|_| {
                        StoreError::Other("chain_state.head is not 32 bytes".into())
                    })?,
                    frontier: serde_json::from_str(&frontier)
                        .map_err(|e| StoreError::Other(format!("chain_state.frontier: {e}")))?,
                    moved: false,
                },
            };
            Ok(e.insert(cursor))
        }
    }
}

fn save_chains(tx: &Transaction<'_>, chains: &HashMap<OrgKey, ChainCursor>) -> Result<()> {
    for (org, chain) in chains.iter().filter(|(_, c)| c.moved) {
        let frontier =
            serde_json::to_string(&chain.frontier).map_err(|e| StoreError::Other(e.to_string()))?;
        tx.prepare_cached(
            "INSERT INTO chain_state (org_id, seq, head, frontier) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (org_id) DO UPDATE SET seq = ?2, head = ?3, frontier = ?4",
        )
        .and_then(|mut s| {
            s.execute(params![
                org.get(),
                chain.seq.get(),
                &chain.head[..],
                frontier
            ])
        })
        .map_err(map_err)?;
    }
    Ok(())
}

fn intern(
    tx: &Transaction<'_>,
    dict: &Dict,
    group: &mut GroupState,
    kind: i64,
    value: &str,
) -> Result<i64> {
    if let Some(id) = dict.id_of(kind, value) {
        return Ok(id);
    }
    if let Some((id, _, _)) = group
        .new_dict
        .iter()
        .find(|(_, k, v)| *k == kind && &**v == value)
    {
        return Ok(*id);
    }
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM dict WHERE kind = ? AND value = ?")
        .and_then(|mut s| s.query_row(params![kind, value], |r| r.get(0)).optional())
        .map_err(map_err)?;
    let id = match existing {
        Some(id) => id,
        None => {
            tx.prepare_cached("INSERT INTO dict (kind, value) VALUES (?, ?)")
                .and_then(|mut s| s.execute(params![kind, value]))
                .map_err(map_err)?;
            tx.last_insert_rowid()
        }
    };
    group.new_dict.push((id, kind, Arc::from(value)));
    Ok(id)
}

fn note_facet(
    tx: &Transaction<'_>,
    facets_seen: &mut HashMap<OrgKey, HashSet<i64>>,
    group: &mut GroupState,
    org: OrgKey,
    dict_id: i64,
) -> Result<()> {
    let seen = match facets_seen.entry(org) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let mut stmt = tx
                .prepare_cached("SELECT dict_id FROM org_facets WHERE org_id = ?")
                .map_err(map_err)?;
            let ids = stmt
                .query_map([org.get()], |r| r.get(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<HashSet<i64>>>())
                .map_err(map_err)?;
            e.insert(ids)
        }
    };
    if seen.contains(&dict_id) || group.new_facets.contains(&(org, dict_id)) {
        return Ok(());
    }
    tx.prepare_cached("INSERT OR IGNORE INTO org_facets (org_id, dict_id) VALUES (?, ?)")
        .and_then(|mut s| s.execute(params![org.get(), dict_id]))
        .map_err(map_err)?;
    group.new_facets.push((org, dict_id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use stele_core::NewEvent;
    use stele_store::conformance::{event, request};
    use stele_store::prelude::*;

    use super::*;
    use crate::SqliteStore;

    const T0: i64 = 1_767_225_600_000;

    fn keyed(key: &str) -> NewEvent {
        NewEvent {
            idempotency_key: Some(key.into()),
            ..event("create", T0)
        }
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Yesterday's event keys still answer; keys of earlier days are never looked at, and are
    /// forgotten a few thousand a group, the oldest first, so that no group pays for a whole day.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn yesterdays_event_keys_answer_and_older_ones_are_forgotten_a_few_thousand_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let (a, kept) = {
            let store = SqliteStore::open(&path).unwrap();
            let a = store.create_org("a").await.unwrap().key;
            let first = store.append(a, request(vec![keyed("kept")])).await.unwrap();
            (a, first.receipts[0].clone())
        };
        let today = day_of(now_millis());
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "UPDATE event_keys SET day = ? WHERE key = 'kept'",
                [today - 1],
            )
            .unwrap();
            // 12,000 keys of earlier days, one of them with the name of a key sent again below.
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000)
                 INSERT INTO event_keys (day, org_id, key, pk, seq)
                 SELECT ?1 - 2 - i % 3, ?2, CASE i WHEN 7 THEN 'old' ELSE 'k' || i END, 1, 1
                 FROM n",
                params![today, a.get()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        let old = &format!("SELECT count(*) FROM event_keys WHERE day < {}", today - 1);
        assert_eq!(count(&conn, old), 12_000);

        // An old day's key is not an answer: the event is written.
        let again = store.append(a, request(vec![keyed("old")])).await.unwrap();
        assert!(!again.replayed);
        assert_eq!(again.receipts[0].seq, Seq::new(2));
        assert_eq!(count(&conn, old), 7_000);
        // Yesterday's is.
        let again = store.append(a, request(vec![keyed("kept")])).await.unwrap();
        assert!(again.replayed);
        assert_eq!(again.receipts, vec![kept]);
        assert_eq!(count(&conn, old), 2_000);
        store
            .append(a, request(vec![event("x", T0)]))
            .await
            .unwrap();
        assert_eq!(count(&conn, old), 0);
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 2);
    }

    /// A database of schema 15 kept events' keys in `idempotency` as `e:` records; opened by
    /// this release, they move to `event_keys` and still answer, and the request keys stay.
    /// Deleting the organization then removes its event keys too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn event_keys_of_schema_15_move_to_their_own_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let (a, first) = {
            let store = SqliteStore::open(&path).unwrap();
            let a = store.create_org("a").await.unwrap().key;
            let mut keyed_request = request(vec![keyed("x"), event("y", T0), keyed("z")]);
            keyed_request.idempotency_key = Some("the-request".into());
            (a, store.append(a, keyed_request).await.unwrap())
        };
        {
            // Back to schema 15: each event key an `e:` record with its receipt as JSON.
            let conn = Connection::open(&path).unwrap();
            let rows: Vec<(i64, String, i64, i64)> = conn
                .prepare("SELECT org_id, key, pk, seq FROM event_keys")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(rows.len(), 2);
            for (org, key, pk, seq) in rows {
                let receipts =
                    idempotency::encode_receipts(&[Receipt::new(entry_id(pk), Seq::new(seq))])
                        .unwrap();
                conn.execute(
                    "INSERT INTO idempotency (org_id, key, fingerprint, receipts, created_ms)
                     VALUES (?, ?, NULL, ?, ?)",
                    params![org, idempotency::event_key(&key), receipts, now_millis()],
                )
                .unwrap();
            }
            conn.execute_batch(
                "DROP TABLE event_keys; DROP TABLE streams; DROP TABLE stream_cursors;
                 PRAGMA user_version = 15;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 2);
        assert_eq!(count(&conn, "SELECT count(*) FROM idempotency"), 1);
        let again = store
            .append(a, request(vec![keyed("z"), keyed("x"), keyed("new")]))
            .await
            .unwrap();
        assert_eq!(again.receipts[0], first.receipts[2]);
        assert_eq!(again.receipts[1], first.receipts[0]);
        assert_eq!(again.receipts[2].seq, Seq::new(4));

        store.delete_org(a).await.unwrap();
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 0);
        assert_eq!(count(&conn, "SELECT count(*) FROM idempotency"), 0);
    }

    /// Writes joined to a group share the appends' transaction, each in a savepoint of its own:
    /// one that fails undoes only its own rows, and the appends and the other joined write of the
    /// same group commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_joined_write_that_fails_undoes_only_its_own_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let a = store.create_org("a").await.unwrap().key;
        let writer = store.writer.clone();
        (writer.run(|tx| {
            tx.execute_batch("CREATE TABLE notes (n INTEGER)")
                .map_err(map_err)
        }))
        .await
        .unwrap();

        // Hold the writer in a job of its own while the three writes queue up behind it, so
        // that they make one group.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (holds, holding_now) = oneshot::channel();
        let holding = tokio::spawn({
            let writer = writer.clone();
            async move {
                (writer.run_on_connection(move |_| {
                    let _ = holds.send(());
                    held.recv().map_err(|_| shutting_down())
                }))
                .await
            }
        });
        holding_now.await.unwrap();
        let free = writer.commands.max_capacity();
        let appended = tokio::spawn({
            let store = store.clone();
            async move { store.append(a, request(vec![event("x", T0)])).await }
        });
        let failing = tokio::spawn({
            let writer = writer.clone();
            async move {
                (writer.run_in_group(|tx| {
                    tx.execute("INSERT INTO notes VALUES (1)", [])
                        .map_err(map_err)?;
                    Err::<(), _>(StoreError::Conflict("refused after writing".into()))
                }))
                .await
            }
        });
        let succeeding = tokio::spawn({
            let writer = writer.clone();
            async move {
                (writer.run_in_group(|tx| {
                    tx.execute("INSERT INTO notes VALUES (2)", [])
                        .map_err(map_err)
                }))
                .await
            }
        });
        while writer.commands.capacity() > free - 3 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        release.send(()).unwrap();
        holding.await.unwrap().unwrap();

        assert_eq!(appended.await.unwrap().unwrap().receipts.len(), 1);
        assert!(matches!(
            failing.await.unwrap(),
            Err(StoreError::Conflict(m)) if m == "refused after writing"
        ));
        assert_eq!(succeeding.await.unwrap().unwrap(), 1);
        let conn = Connection::open(&path).unwrap();
        assert_eq!(count(&conn, "SELECT count(*) FROM notes WHERE n = 2"), 1);
        assert_eq!(count(&conn, "SELECT count(*) FROM notes"), 1);
        assert_eq!(count(&conn, "SELECT count(*) FROM entries"), 1);
    }
}
