//! The group-commit writer: one task owns one connection, gathers every append request that is
//! waiting into one transaction, links the events into their organizations' hash chains, and
//! answers each request only after `COMMIT` returned (with `synchronous_commit = on`, so the WAL
//! is flushed: an acknowledgement means durable).
//!
//! Why one task per process: one commit (one WAL flush) then covers many requests, and the
//! statements of a group are few whatever its size: the entries and their identifier rows go in
//! with `COPY … FROM STDIN (FORMAT binary)`, the fastest way PostgreSQL takes rows, and the small
//! tables (facets, chain positions) as arrays (`unnest`).
//!
//! Before a group's transaction starts, the months its events occurred in get their partitions
//! if they have none yet (`partitions.rs`; normally they were made ahead of time). If retention
//! in another process dropped one of those months after this process last saw it, the insert
//! fails for want of a partition; the group's months are then forgotten and the group runs again,
//! making them anew.
//!
//! Why it stays correct with several processes on one database:
//! - **`seq`**: the group locks each of its organizations' `chain_state` row
//!   (`SELECT … FOR UPDATE`, in organization order so two groups cannot deadlock) before reading
//!   where the chain stands. Another process writing the same organization waits for our commit
//!   and then reads our new head, so `seq` stays gap-free and the chain linear.
//! - **`pk`** (unique across organizations, dense within a millisecond so that `pk` order is
//!   `seq` order): allocated after taking one transaction-scoped advisory lock, the last lock a
//!   group takes, so allocation cannot interleave between processes and lock order stays acyclic.
//!   While an organization's chain is locked, the largest `pk` of a millisecond can only grow, so
//!   `max(pk) + 1` is strictly after every earlier entry of that organization.
//! - **Idempotency**: keys are looked up after the organization is locked, so a retry through
//!   another process sees the first request's committed receipts.
//!
//! A request that must be refused (an idempotency key reused for another body, an unknown
//! organization, text PostgreSQL cannot store) is refused before it writes anything, so it never
//! disturbs its neighbours; a database failure rolls the whole group back and every request in it
//! gets an error, so nothing is half-written and nothing acknowledged is lost. A deadlock the
//! server broke simply runs the group again.

use std::collections::{BTreeSet, HashMap};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stele_core::chain;
use stele_core::merkle::{self, Frontier, Hash};
use stele_core::time::{Millis, now_millis};
use stele_core::{NewEvent, Seq};
use stele_store::idempotency::{self, IDEMPOTENCY_RETENTION_MS, Record};
use stele_store::proofs;
use stele_store::{
    AppendOutcome, AppendRequest, OrgKey, PreparedEvent, Receipt, Result, StoreError,
};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Config;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::codec::{entry_facets, entry_id, entry_keys, org_keys, outcome_code, pk_floor};
use crate::error::{Error, R, is_missing_partition, is_retryable, other};
use crate::partitions::{Partitions, months_of};
use crate::pool::{Conn, Tx, connect};

/// How many events one group commit may gather before it commits.
const MAX_GROUP_EVENTS: usize = 50_000;
/// How often the writer forgets idempotency keys older than the retention.
const IDEMPOTENCY_SWEEP_EVERY_MS: Millis = 10 * 60 * 1000;
/// How often a group is run again after a deadlock or allocation conflict before giving up.
const MAX_ATTEMPTS: u32 = 8;
/// How long one attempt at a group may take. A server that accepts the connection but never
/// answers (frozen, or a network path that drops packets silently) would otherwise hold every
/// append forever; after this the requests get 503 and the writer opens a new connection.
const GROUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The advisory lock that serialises `pk` allocation across processes (`STELEPK1` in ASCII).
const PK_LOCK: i64 = 0x5354_454c_4550_4b31;

/// Session settings of the writer's connection: an acknowledgement must mean the WAL is flushed,
/// whatever the server's default.
pub const WRITER_SETUP: &str = "SET synchronous_commit = on";

struct Command {
    org: OrgKey,
    request: AppendRequest,
    reply: oneshot::Sender<Result<AppendOutcome>>,
}

#[derive(Clone)]
pub struct Writer {
    commands: mpsc::Sender<Command>,
}

impl Writer {
    /// Starts the writer task on the current runtime. It ends when every `Writer` is dropped.
    pub fn spawn(config: Config, conn: Option<Conn>, partitions: Arc<Partitions>) -> Writer {
        let (commands, rx) = mpsc::channel(4096);
        let task = WriterTask {
            config,
            conn,
            partitions,
            last_sweep: 0,
        };
        tokio::spawn(task.run(rx));
        Writer { commands }
    }

    pub async fn append(&self, org: OrgKey, request: AppendRequest) -> Result<AppendOutcome> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command {
                org,
                request,
                reply,
            })
            .await
            .map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }
}

fn shutting_down() -> StoreError {
    StoreError::Unavailable("the writer has stopped".into())
}

struct WriterTask {
    config: Config,
    /// Opened on demand and replaced when the server closes it.
    conn: Option<Conn>,
    partitions: Arc<Partitions>,
    last_sweep: Millis,
}

impl WriterTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.recv().await {
            let mut events = first.request.events.len();
            let mut group = vec![first];
            while events < MAX_GROUP_EVENTS {
                match rx.try_recv() {
                    Ok(command) => {
                        events += command.request.events.len();
                        group.push(command);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group).await;
            stele_store::metrics::writer_queue(rx.len());
        }
        tracing::debug!("postgres writer stopped");
    }

    async fn commit_group(&mut self, group: Vec<Command>) {
        let now = now_millis();
        let started = Instant::now();
        let events = group.iter().map(|c| c.request.events.len()).sum();
        let sweep = now - self.last_sweep > IDEMPOTENCY_SWEEP_EVERY_MS;
        let requests: Vec<(OrgKey, &AppendRequest)> =
            group.iter().map(|c| (c.org, &c.request)).collect();
        let months = months_of(
            requests
                .iter()
                .flat_map(|(_, r)| r.events.iter().map(|s| s.sealed.event.occurred_at)),
        );
        let mut attempt = 1;
        let result = loop {
            let (slot, config, partitions) = (&mut self.conn, &self.config, &self.partitions);
            let attempt_once = async {
                let conn = open(slot, config).await?;
                partitions.ensure(conn, months.iter().copied()).await?;
                write_group(conn, &requests, now, sweep).await
            };
            let result = match tokio::time::timeout(GROUP_TIMEOUT, attempt_once).await {
                Ok(result) => result,
                Err(_) => {
                    // The connection is stuck mid-conversation; it cannot be used again.
                    self.conn = None;
                    Err(Error::Store(StoreError::Unavailable(format!(
                        "the database did not answer within {} s",
                        GROUP_TIMEOUT.as_secs()
                    ))))
                }
            };
            match result {
                Err(e) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "group commit conflicted; running it again");
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(e) if is_missing_partition(&e) && attempt < MAX_ATTEMPTS => {
                    // Retention (in another process) dropped an emptied month this process still
                    // believed in; forget the group's months so that they are made again.
                    tracing::debug!(error = %e, attempt, "a month's partition is gone; making it again");
                    self.partitions.forget(months.iter().copied());
                    attempt += 1;
                }
                other => break other,
            }
        };
        stele_store::metrics::group_commit(events, started, result.is_ok());
        match result {
            Ok(outcomes) => {
                if sweep {
                    self.last_sweep = now;
                }
                for (command, outcome) in group.into_iter().zip(outcomes) {
                    let _ = command.reply.send(outcome);
                }
            }
            Err(error) => {
                // Usually nothing of the group was stored; if the connection broke during
                // COMMIT the outcome is unknown, which is why clients retry with their
                // idempotency keys.
                tracing::error!(%error, "group commit failed");
                // A connection that failed may be broken in a way the driver has not noticed
                // yet; a fresh one costs one handshake, a stale one another round of errors.
                self.conn = None;
                let error = StoreError::from(error);
                for command in group {
                    let _ = command.reply.send(Err(clone_err(&error)));
                }
            }
        }
    }
}

/// The writer's connection, opened (again) if needed.
async fn open<'c>(slot: &'c mut Option<Conn>, config: &Config) -> R<&'c mut Conn> {
    if slot.as_ref().is_none_or(Conn::is_closed) {
        *slot = Some(connect(config, WRITER_SETUP).await?);
    }
    Ok(slot.as_mut().expect("just opened"))
}

/// The error every request of a failed group gets. A failure of the database itself is
/// "unavailable": the client may retry (with its idempotency key, if the outcome is unknown).
fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::CleanupPending(m) => StoreError::CleanupPending(m.clone()),
        StoreError::Unavailable(m) | StoreError::Other(m) => StoreError::Unavailable(m.clone()),
    }
}

/// One transaction for the whole group. The outer error fails (or retries) the group; each inner
/// `Result` is one request's answer.
async fn write_group(
    conn: &mut Conn,
    requests: &[(OrgKey, &AppendRequest)],
    now: Millis,
    sweep: bool,
) -> R<Vec<Result<AppendOutcome>>> {
    let mut tx = conn.transaction().await?;
    if sweep {
        tx.execute(
            "DELETE FROM idempotency WHERE created_ms < $1",
            &[&(now - IDEMPOTENCY_RETENTION_MS)],
        )
        .await?;
    }
    // Every organization a request touches: its own (whose records hold its request key) and
    // its events' targets.
    let orgs: BTreeSet<OrgKey> = requests
        .iter()
        .flat_map(|(org, r)| std::iter::once(*org).chain(r.events.iter().map(|e| e.org_or(*org))))
        .collect();
    let chains = lock_chains(&mut tx, &orgs.into_iter().collect::<Vec<_>>()).await?;
    let mut idempotency = Idempotency::load(&mut tx, requests, &chains).await?;
    let mut group = Group::new(chains, now);
    let occurred: Vec<Millis> = requests
        .iter()
        .flat_map(|(_, r)| r.events.iter().map(|s| s.sealed.event.occurred_at))
        .collect();
    group.allocate_pks(&mut tx, &occurred).await?;

    let mut outcomes = Vec::with_capacity(requests.len());
    for (org, request) in requests {
        outcomes.push(append_request(&mut group, &mut idempotency, *org, request)?);
    }
    group.flush(&mut tx).await?;
    idempotency.save(&mut tx, now).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Decides one request against the idempotency records and pushes its new events into the group.
fn append_request(
    group: &mut Group,
    idempotency: &mut Idempotency,
    org: OrgKey,
    request: &AppendRequest,
) -> R<Result<AppendOutcome>> {
    // `lock_chains` leaves out organizations that do not exist: a request naming one is refused
    // whole, before it writes anything.
    let known = |o: OrgKey| group.chains.contains_key(&o);
    if !known(org) || !request.events.iter().all(|e| known(e.org_or(org))) {
        return Ok(Err(StoreError::NotFound));
    }
    if let Some(problem) = unstorable(request) {
        return Ok(Err(StoreError::Other(problem)));
    }
    idempotency::append(&mut GroupLedger { group, idempotency }, org, request)
}

/// The idempotency records and entries of the organizations a request touches, as the group
/// transaction sees them.
struct GroupLedger<'a> {
    group: &'a mut Group,
    idempotency: &'a mut Idempotency,
}

impl idempotency::Ledger for GroupLedger<'_> {
    type Error = Error;

    fn find(&mut self, org: OrgKey, key: &str) -> R<Option<Record>> {
        Ok(self.idempotency.get(org, key).cloned())
    }

    fn remember(
        &mut self,
        org: OrgKey,
        key: String,
        fingerprint: Option<&[u8; 32]>,
        receipts: &[Receipt],
    ) -> R<()> {
        self.idempotency
            .remember(org, key, fingerprint.map(|f| f.to_vec()), receipts.to_vec());
        Ok(())
    }

    fn write(&mut self, _index: usize, org: OrgKey, event: &PreparedEvent) -> R<Receipt> {
        self.group.push(org, event)
    }
}

/// PostgreSQL's `text` cannot hold U+0000, which JSON (`"\u0000"`) can carry. Values stored as
/// plain columns are checked up front, so such a request is refused alone instead of failing its
/// whole group. (The JSON columns escape it and need no check.)
fn unstorable(request: &AppendRequest) -> Option<String> {
    let nul = |s: &str| s.contains('\0');
    if request.idempotency_key.as_deref().is_some_and(nul) {
        return Some("the idempotency key contains a NUL character (U+0000)".into());
    }
    for (i, prepared) in request.events.iter().enumerate() {
        let e = &prepared.sealed.event;
        let mut texts = vec![e.action.as_str(), e.channel.as_str()];
        texts.extend(
            [
                e.detailed_action.as_deref(),
                e.description.as_deref(),
                e.context.correlation_id.as_deref(),
                e.idempotency_key.as_deref(),
                e.entity.as_ref().map(|x| x.kind.as_str()),
            ]
            .into_iter()
            .flatten(),
        );
        texts.extend(entry_keys(e).into_iter().map(|(_, v)| v));
        if texts.into_iter().any(nul) {
            return Some(format!(
                "event {i} contains a NUL character (U+0000), which cannot be stored"
            ));
        }
    }
    None
}

/// One organization's chain position, read under its row lock.
pub struct ChainCursor {
    pub org_id: String,
    pub seq: Seq,
    pub head: Hash,
    pub frontier: Frontier,
    /// Whether this group moved it (then `chain_state` is updated).
    moved: bool,
}

/// A deleted organization takes no more entries. The key-share lock on its `orgs` row orders an
/// append against the deletion's `FOR UPDATE` of that row (deletion.rs): an append that got
/// there first commits before the deletion begins (and its entries go with the rest); one that
/// waited sees the row as the deletion left it, and the organization as missing.
const CHAIN_SELECT: &str = "SELECT c.org_id, o.id, c.seq, c.head, c.frontier
     FROM chain_state c JOIN orgs o ON o.key = c.org_id
     WHERE c.org_id = ANY($1) AND o.deleted_ms IS NULL
     ORDER BY c.org_id FOR UPDATE OF c FOR KEY SHARE OF o";

/// Locks the organizations' `chain_state` rows, in organization order, creating the rows that
/// are missing. Organizations that do not exist, or are being deleted, are left out of the
/// answer.
pub async fn lock_chains(tx: &mut Tx<'_>, orgs: &[OrgKey]) -> R<HashMap<OrgKey, ChainCursor>> {
    let mut chains = HashMap::with_capacity(orgs.len());
    read_chains(tx, orgs, &mut chains).await?;
    let missing: Vec<OrgKey> = orgs
        .iter()
        .copied()
        .filter(|o| !chains.contains_key(o))
        .collect();
    if missing.is_empty() {
        return Ok(chains);
    }
    // Organizations get their row when they are created; this covers rows made any other way.
    let rows = tx
        .query(
            "SELECT key, id FROM orgs WHERE key = ANY($1) AND deleted_ms IS NULL",
            &[&org_keys(&missing)],
        )
        .await?;
    let empty = serde_json::to_string(&Frontier::new()).map_err(|e| other(e.to_string()))?;
    for row in &rows {
        let (key, id): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        tx.execute(
            "INSERT INTO chain_state (org_id, seq, head, frontier) VALUES ($1, 0, $2, $3)
             ON CONFLICT (org_id) DO NOTHING",
            &[&key, &chain::genesis(&id).to_vec(), &empty],
        )
        .await?;
    }
    read_chains(tx, &missing, &mut chains).await?;
    Ok(chains)
}

async fn read_chains(
    tx: &mut Tx<'_>,
    orgs: &[OrgKey],
    into: &mut HashMap<OrgKey, ChainCursor>,
) -> R<()> {
    for row in tx.query(CHAIN_SELECT, &[&org_keys(orgs)]).await? {
        let head: Vec<u8> = row.try_get(3)?;
        let frontier: &str = row.try_get(4)?;
        into.insert(
            OrgKey::new(row.try_get(0)?),
            ChainCursor {
                org_id: row.try_get(1)?,
                seq: Seq::new(row.try_get(2)?),
                head: head
                    .try_into()
                    .map_err(|_| other("chain_state.head is not 32 bytes"))?,
                frontier: serde_json::from_str(frontier)
                    .map_err(|e| other(format!("chain_state.frontier: {e}")))?,
                moved: false,
            },
        );
    }
    Ok(())
}

/// The idempotency records a group needs, loaded in one query, plus the ones it creates.
struct Idempotency {
    records: HashMap<(OrgKey, String), Record>,
    new: Vec<(OrgKey, String)>,
}

impl Idempotency {
    async fn load(
        tx: &mut Tx<'_>,
        requests: &[(OrgKey, &AppendRequest)],
        chains: &HashMap<OrgKey, ChainCursor>,
    ) -> R<Idempotency> {
        let (mut orgs, mut keys) = (Vec::new(), Vec::new());
        for (org, request) in requests.iter().filter(|(o, _)| chains.contains_key(o)) {
            if let Some(k) = &request.idempotency_key {
                orgs.push(org.get());
                keys.push(idempotency::request_key(k));
            }
            // An event's key is looked up in the organization the event joins.
            for (target, k) in request.events.iter().filter_map(|e| {
                let key = e.sealed.event.idempotency_key.as_ref()?;
                Some((e.org_or(*org), key))
            }) {
                orgs.push(target.get());
                keys.push(idempotency::event_key(k));
            }
        }
        let mut records = HashMap::new();
        // Keys with NUL cannot be sent as text; their requests are refused anyway.
        let (orgs, keys): (Vec<i64>, Vec<String>) = orgs
            .into_iter()
            .zip(keys)
            .filter(|(_, k)| !k.contains('\0'))
            .unzip();
        if !keys.is_empty() {
            let rows = tx
                .query(
                    "SELECT i.org_id, i.key, i.fingerprint, i.receipts FROM idempotency i
                     JOIN unnest($1::int8[], $2::text[]) AS w (org_id, key)
                       ON i.org_id = w.org_id AND i.key = w.key",
                    &[&orgs, &keys],
                )
                .await?;
            for row in rows {
                let receipts = idempotency::decode_receipts(row.try_get(3)?)?;
                records.insert(
                    (OrgKey::new(row.try_get(0)?), row.try_get(1)?),
                    Record {
                        fingerprint: row.try_get(2)?,
                        receipts,
                    },
                );
            }
        }
        Ok(Idempotency {
            records,
            new: Vec::new(),
        })
    }

    fn get(&self, org: OrgKey, key: &str) -> Option<&Record> {
        if self.records.is_empty() {
            return None;
        }
        self.records.get(&(org, key.to_string()))
    }

    fn remember(
        &mut self,
        org: OrgKey,
        key: String,
        fingerprint: Option<Vec<u8>>,
        receipts: Vec<Receipt>,
    ) {
        self.new.push((org, key.clone()));
        self.records.insert(
            (org, key),
            Record {
                fingerprint,
                receipts,
            },
        );
    }

    async fn save(&self, tx: &mut Tx<'_>, now: Millis) -> R<()> {
        if self.new.is_empty() {
            return Ok(());
        }
        let mut orgs = Vec::with_capacity(self.new.len());
        let mut keys = Vec::with_capacity(self.new.len());
        let mut fingerprints = Vec::with_capacity(self.new.len());
        let mut receipts = Vec::with_capacity(self.new.len());
        for (org, key) in &self.new {
            let record = &self.records[&(*org, key.clone())];
            orgs.push(org.get());
            keys.push(key.as_str());
            fingerprints.push(record.fingerprint.clone());
            receipts.push(idempotency::encode_receipts(&record.receipts)?);
        }
        tx.execute(
            "INSERT INTO idempotency (org_id, key, fingerprint, receipts, created_ms)
             SELECT u.org_id, u.key, u.fingerprint, u.receipts, $5
             FROM unnest($1::int8[], $2::text[], $3::bytea[], $4::text[])
                 AS u (org_id, key, fingerprint, receipts)",
            &[&orgs, &keys, &fingerprints, &receipts, &now],
        )
        .await?;
        Ok(())
    }
}

/// Entries being written in one transaction: the chains they extend, the `pk`s handed out, and
/// their rows as columns, written by [`Group::flush`] in a few statements.
pub struct Group {
    pub chains: HashMap<OrgKey, ChainCursor>,
    /// The next free `pk` per millisecond (see [`Group::allocate_pks`]).
    next_pk: HashMap<Millis, i64>,
    recorded_ms: Millis,
    rows: Rows,
}

#[derive(Default)]
struct Rows {
    pk: Vec<i64>,
    org_id: Vec<i64>,
    seq: Vec<i64>,
    occurred_ms: Vec<i64>,
    action: Vec<String>,
    detailed_action: Vec<Option<String>>,
    channel: Vec<String>,
    actor_type: Vec<i16>,
    outcome: Vec<i16>,
    entity_type: Vec<Option<String>>,
    correlation_id: Vec<Option<String>>,
    description: Vec<Option<String>>,
    body: Vec<String>,
    personal: Vec<String>,
    salt: Vec<Option<Vec<u8>>>,
    personal_digest: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    key_org: Vec<i64>,
    key_kind: Vec<i16>,
    key_value: Vec<String>,
    key_pk: Vec<i64>,
    facets: BTreeSet<(OrgKey, i16, String)>,
    /// Merkle subtrees the entries closed (`stele_store::proofs`).
    subtree_org: Vec<i64>,
    subtree_level: Vec<i16>,
    subtree_idx: Vec<i64>,
    subtree_hash: Vec<Vec<u8>>,
}

impl Group {
    pub fn new(chains: HashMap<OrgKey, ChainCursor>, recorded_ms: Millis) -> Group {
        Group {
            chains,
            next_pk: HashMap::new(),
            recorded_ms,
            rows: Rows::default(),
        }
    }

    /// Takes the allocation lock and reads, for each millisecond the group's events occurred in,
    /// the largest `pk` already used there. Called once, after the chains are locked.
    pub async fn allocate_pks(&mut self, tx: &mut Tx<'_>, occurred: &[Millis]) -> R<()> {
        let ms: BTreeSet<Millis> = occurred.iter().copied().collect();
        if ms.is_empty() {
            return Ok(());
        }
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PK_LOCK])
            .await?;
        let lo: Vec<i64> = ms.iter().map(|m| pk_floor(*m)).collect();
        let hi: Vec<i64> = ms.iter().map(|m| pk_floor(m + 1)).collect();
        let rows = tx
            .query(
                "SELECT b.lo, (SELECT max(e.pk) FROM entries e WHERE e.pk >= b.lo AND e.pk < b.hi)
                 FROM unnest($1::int8[], $2::int8[]) AS b (lo, hi)",
                &[&lo, &hi],
            )
            .await?;
        for row in rows {
            let lo: i64 = row.try_get(0)?;
            let max: Option<i64> = row.try_get(1)?;
            self.next_pk
                .insert(lo >> crate::codec::PK_MS_SHIFT, max.map_or(lo, |m| m + 1));
        }
        Ok(())
    }

    /// Links one event into its organization's chain and queues its rows. The organization's
    /// chain must be locked and the event's millisecond allocated.
    pub fn push(&mut self, org: OrgKey, prepared: &PreparedEvent) -> R<Receipt> {
        let sealed = &prepared.sealed;
        let event = &sealed.event;
        let ms = event.occurred_at;
        let next = self
            .next_pk
            .get_mut(&ms)
            .ok_or_else(|| other("no pk allocated for this millisecond"))?;
        let pk = *next;
        if pk >= pk_floor(ms + 1) {
            return Err(Error::Store(StoreError::Unavailable(
                "more than 2,097,152 entries for one millisecond".into(),
            )));
        }
        *next += 1;
        let id = entry_id(pk);
        let chain = self
            .chains
            .get_mut(&org)
            .ok_or_else(|| other("the organization's chain is not locked"))?;
        let seq = chain.seq.next();
        let hash = chain::entry_hash(
            &chain.head,
            &chain.org_id,
            seq,
            &id,
            self.recorded_ms,
            &sealed.event_digest,
        );
        chain.seq = seq;
        chain.head = hash;
        let r = &mut self.rows;
        chain
            .frontier
            .push_closing(merkle::leaf_hash(&hash), |t, h| {
                if proofs::is_stored(&t) {
                    r.subtree_org.push(org.get());
                    r.subtree_level.push(i16::from(t.level));
                    r.subtree_idx.push(t.index as i64);
                    r.subtree_hash.push(h.to_vec());
                }
            });
        chain.moved = true;

        r.pk.push(pk);
        r.org_id.push(org.get());
        r.seq.push(seq.get());
        r.occurred_ms.push(ms);
        r.action.push(event.action.clone());
        r.detailed_action.push(event.detailed_action.clone());
        r.channel.push(event.channel.clone());
        r.actor_type.push(event.actor.kind.code() as i16);
        r.outcome.push(outcome_code(event.outcome));
        r.entity_type
            .push(event.entity.as_ref().map(|e| e.kind.clone()));
        r.correlation_id.push(event.context.correlation_id.clone());
        r.description.push(event.description.clone());
        r.body.push(prepared.body().to_string());
        r.personal.push(prepared.personal().to_string());
        r.salt.push(sealed.seal.to_bytes());
        r.personal_digest.push(sealed.personal_digest.to_vec());
        r.hash.push(hash.to_vec());
        push_keys(r, org, pk, event);
        for (kind, value) in entry_facets(event) {
            r.facets.insert((org, kind, value.to_string()));
        }
        Ok(Receipt::new(id, seq))
    }

    /// Writes the queued rows and the chains' new positions.
    pub async fn flush(&mut self, tx: &mut Tx<'_>) -> R<()> {
        let r = std::mem::take(&mut self.rows);
        if !r.pk.is_empty() {
            let sql = format!("COPY entries ({ENTRY_COPY_COLUMNS}) FROM STDIN (FORMAT binary)");
            let copy = tx.copy_in(&sql).await?;
            let mut rows = pin!(BinaryCopyInWriter::new(copy, &ENTRY_COPY_TYPES));
            for i in 0..r.pk.len() {
                let row: [&(dyn ToSql + Sync); 18] = [
                    &r.pk[i],
                    &r.org_id[i],
                    &r.seq[i],
                    &r.occurred_ms[i],
                    &self.recorded_ms,
                    &r.action[i],
                    &r.detailed_action[i],
                    &r.channel[i],
                    &r.actor_type[i],
                    &r.outcome[i],
                    &r.entity_type[i],
                    &r.correlation_id[i],
                    &r.description[i],
                    &r.body[i],
                    &r.personal[i],
                    &r.salt[i],
                    &r.personal_digest[i],
                    &r.hash[i],
                ];
                rows.as_mut().write(&row).await?;
            }
            rows.finish().await?;
        }
        if !r.key_pk.is_empty() {
            let sql = format!("COPY entry_keys ({KEY_COPY_COLUMNS}) FROM STDIN (FORMAT binary)");
            let copy = tx.copy_in(&sql).await?;
            let mut rows = pin!(BinaryCopyInWriter::new(copy, &KEY_COPY_TYPES));
            for i in 0..r.key_pk.len() {
                let row: [&(dyn ToSql + Sync); 4] =
                    [&r.key_org[i], &r.key_kind[i], &r.key_value[i], &r.key_pk[i]];
                rows.as_mut().write(&row).await?;
            }
            rows.finish().await?;
        }
        if !r.facets.is_empty() {
            let (mut orgs, mut kinds, mut values) = (vec![], vec![], vec![]);
            for (org, kind, value) in r.facets {
                orgs.push(org.get());
                kinds.push(kind);
                values.push(value);
            }
            tx.execute(
                "INSERT INTO facets (org_id, kind, value)
                 SELECT * FROM unnest($1::int8[], $2::int2[], $3::text[])
                 ON CONFLICT DO NOTHING",
                &[&orgs, &kinds, &values],
            )
            .await?;
        }
        if !r.subtree_org.is_empty() {
            tx.execute(
                "INSERT INTO merkle_subtrees (org_id, level, idx, hash)
                 SELECT * FROM unnest($1::int8[], $2::int2[], $3::int8[], $4::bytea[])",
                &[
                    &r.subtree_org,
                    &r.subtree_level,
                    &r.subtree_idx,
                    &r.subtree_hash,
                ],
            )
            .await?;
        }
        let (mut orgs, mut seqs, mut heads, mut frontiers) = (vec![], vec![], vec![], vec![]);
        for (org, chain) in self.chains.iter_mut().filter(|(_, c)| c.moved) {
            orgs.push(org.get());
            seqs.push(chain.seq.get());
            heads.push(chain.head.to_vec());
            frontiers.push(encode(&chain.frontier)?);
            chain.moved = false;
        }
        if !orgs.is_empty() {
            tx.execute(
                "UPDATE chain_state c SET seq = u.seq, head = u.head, frontier = u.frontier
                 FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::text[])
                     AS u (org_id, seq, head, frontier)
                 WHERE c.org_id = u.org_id",
                &[&orgs, &seqs, &heads, &frontiers],
            )
            .await?;
        }
        Ok(())
    }
}

/// The entries' columns as the writer sends them, and their types (binary COPY sends values in
/// each type's wire format, so the types must match the table's exactly). Public so that the
/// bench's plain-`COPY` yardstick copies exactly the columns the writer does.
pub const ENTRY_COPY_COLUMNS: &str = "pk, org_id, seq, occurred_ms, recorded_ms, action,
     detailed_action, channel, actor_type, outcome, entity_type, correlation_id, description,
     body, personal, salt, personal_digest, hash";
pub const ENTRY_COPY_TYPES: [Type; 18] = [
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
];
/// The same for `entry_keys`.
pub const KEY_COPY_COLUMNS: &str = "org_id, kind, value, pk";
pub const KEY_COPY_TYPES: [Type; 4] = [Type::INT8, Type::INT2, Type::TEXT, Type::INT8];

fn push_keys(r: &mut Rows, org: OrgKey, pk: i64, event: &NewEvent) {
    for (kind, value) in entry_keys(event) {
        r.key_org.push(org.get());
        r.key_kind.push(kind);
        r.key_value.push(value.to_string());
        r.key_pk.push(pk);
    }
}

/// Inserts `entry_keys` rows given as columns.
pub async fn insert_keys(
    tx: &mut Tx<'_>,
    orgs: &[i64],
    kinds: &[i16],
    values: &[String],
    pks: &[i64],
) -> R<()> {
    if orgs.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO entry_keys (org_id, kind, value, pk)
         SELECT * FROM unnest($1::int8[], $2::int2[], $3::text[], $4::int8[])",
        &[&orgs, &kinds, &values, &pks],
    )
    .await?;
    Ok(())
}

fn encode<T: serde::Serialize>(value: &T) -> R<String> {
    serde_json::to_string(value).map_err(|e| other(e.to_string()))
}
