//! Stele's PostgreSQL backend: the same [`Store`] contract as the embedded SQLite backend, for
//! trails that outgrow one machine or are served by several Stele processes at once.
//!
//! How it is put together, and why:
//! - **Writes** of the trail go through one group-commit writer per process (`writer.rs`): every
//!   append request waiting is written in one transaction, with rows sent as arrays, and each
//!   request is answered after `COMMIT` (WAL flushed). Correctness across processes comes from the
//!   database, not from the writer being alone: each organization's `chain_state` row is locked
//!   (`SELECT … FOR UPDATE`) while its `seq` numbers and hash chain are extended, and `pk`
//!   allocation takes a transaction-scoped advisory lock.
//! - **Reads** run on a small pool of connections (`pool.rs`); a list is one indexed query plus a
//!   capped count, pipelined on one connection (`read.rs`).
//! - **Other writes** (organizations, API keys, checkpoints, erasure, settings, retention) are
//!   rare and run on pool connections in their own transactions; erasure takes the same chain
//!   lock as the writer. Retention deletes expired entries (the one deletion the schema allows,
//!   `retention.rs`) and then drops the monthly partitions it emptied (`partitions.rs`).
//! - **Upkeep**: with a signing key, a background task signs due checkpoints every few seconds,
//!   like the SQLite backend's upkeep thread. Several processes take turns on an advisory lock to
//!   do so, and an organization whose checkpoints another key signed is left unsigned (and logged)
//!   rather than given a second key's signature (`integrity::make_checkpoints`).
//! - **Outages**: every wait on the database is bounded (`pool.rs`: connecting, waiting for a
//!   pooled connection, a peer that stops answering), so while the database is unreachable
//!   requests fail with [`StoreError::Unavailable`] in seconds instead of hanging; broken
//!   connections are replaced on demand, so service resumes by itself when it returns.
//! - The hash chain, Merkle frontier, checkpoint signatures and erasure pseudonyms are
//!   `stele_core`'s and entry ids use the SQLite backend's scheme, so `verify` reports the same
//!   problem kinds, at the same `seq`, on both backends.
//!
//! The schema and its reasons are in `schema.rs`. Migrations run on [`PgStore::connect`] (and
//! [`migrate`] runs them alone); the database URL is only ever logged through
//! [`redact_url`], which hides the password.

mod action_schemas;
mod codec;
mod deletion;
mod erasure;
mod error;
mod export_jobs;
mod integrity;
mod members;
mod partitions;
mod pool;
mod print_log;
mod read;
mod retention;
mod retraced_viewer;
mod schema;
mod streams;
mod subtrees;
mod writer;

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stele_core::chain;
use stele_core::checkpoint::{PublicKey, SignedCheckpoint, SigningKey};
use stele_core::filter::EventFilter;
use stele_core::merkle::{Frontier, Hash, Subtree};
use stele_core::params::PageRequest;
use stele_core::time::{Millis, now_millis};
use stele_core::{Entry, Seq};
use stele_store::prelude::*;
use stele_store::rows::RowPage;
use stele_store::{
    ActionSchema, ApiKeyInfo, AppendOutcome, AppendRequest, Classification, Cleanup, Cutoffs,
    Erasure, ErasureOutcome, ExpiredBatch, ExportJob, ExportJobOutcome, ExportSweep,
    ExportSweepOutcome, Facets, KeyHash, Member, MemberUpdate, NewActionSchema, NewApiKey,
    NewExportJob, NewMember, NewOrganization, NewSession, NewViewerApiToken, OrgKey,
    OrgPageRequest, OrgSettings, OrgUpdate, Organization, Page, Print, PrintAudit, PrintFields,
    PrintFilter, PrintId, PrintPage, PrintStats, Redaction, RedactionOutcome, RemovedPerChannel,
    Result, RevokedKey, SavedExport, Scope, Session, SessionHash, StoreError, VerifiedPoint,
    VerifyReport, ViewerApiToken,
};
use stele_store::{DeliveryReport, NewStream, OrgProgress, Stream, StreamChange, StreamClaim};
use tokio::task::JoinHandle;
use tokio_postgres::Row;

pub use error::redact_url;
pub use writer::{ENTRY_COPY_COLUMNS, ENTRY_COPY_TYPES, KEY_COPY_COLUMNS, KEY_COPY_TYPES};

/// Test support (a database per test), for this crate's tests and, through the `testsuite`
/// feature in their `[dev-dependencies]`, other crates' tests; no product build carries it.
#[cfg(any(test, feature = "testsuite"))]
pub mod testing;

use crate::error::{Error, R, is_missing_partition, is_retryable};
use crate::partitions::Partitions;
use crate::pool::{Pool, base_config, connect};
use crate::read::READER_SETUP;
use crate::writer::{WRITER_SETUP, Writer};

/// Connections kept for reads and the rare other writes (the writer has its own).
const POOL_SIZE: usize = 8;
/// Connections kept for the lookups every request makes (see [`LOOKUP_SETUP`]).
const LOOKUP_POOL_SIZE: usize = 4;

/// Session settings of the lookup connections: PostgreSQL's default plan cache, where a prepared
/// statement gets a generic plan once five executions showed that planning for the actual value
/// buys nothing. The lookups a request makes before anything else (its API key, its console
/// session, the organization a platform names) find one row by a unique key, whose plan never
/// depends on the value. On the read connections (`force_custom_plan`, see [`READER_SETUP`])
/// each of them was planned again every time: 0.25 to 0.3 ms of the server's CPU for an API
/// key, more than the single-event append it let in (docs/benchmarks.md).
const LOOKUP_SETUP: &str = "SET jit = off";
/// How often the upkeep task looks for checkpoints that are due.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// How often an erasure or a print log write is run again after a deadlock before giving up.
const MAX_ATTEMPTS: u32 = 8;

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Signs the chain's checkpoints. Without one (an operator's CLI command) no checkpoint is
    /// made; the server, which has the key, makes them.
    pub signing_key: Option<SigningKey>,
    /// A checkpoint is signed at least this often for an organization with new entries.
    pub checkpoint_every: Duration,
    /// How long the count beside a page may take before it answers with a lower bound
    /// (`read.rs`). Tests of the count's cap raise it, so a busy machine cannot cut them short.
    pub count_budget: Duration,
    /// How long an erasure or redaction waits for transactions older than it before the clean-up
    /// that removes the old values from the files (`erasure.rs`); the upkeep finishes it later.
    pub cleanup_wait: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            signing_key: None,
            checkpoint_every: Duration::from_secs(60),
            count_budget: read::COUNT_BUDGET,
            cleanup_wait: Duration::from_secs(30),
        }
    }
}

pub struct PgStore {
    /// Reads and the writes that do not go through the writer.
    pool: Arc<Pool>,
    /// Point lookups by a unique key that requests make to get in (see [`LOOKUP_SETUP`]).
    lookups: Arc<Pool>,
    partitions: Arc<Partitions>,
    writer: Writer,
    options: PgOptions,
    upkeep: Option<JoinHandle<()>>,
}

/// Applies the schema migrations and returns (`stele migrate`). `PgStore::connect` does the same.
pub async fn migrate(url: &str) -> Result<()> {
    let config = base_config(url)?;
    let mut conn = connect(&config, "")
        .await
        .map_err(|e| unreachable_at(url, e))?;
    schema::migrate(&mut conn.client).await?;
    subtrees::fill_missing(&mut conn).await?;
    Ok(())
}

fn unreachable_at(url: &str, e: Error) -> StoreError {
    match StoreError::from(e) {
        StoreError::Unavailable(m) => {
            StoreError::Unavailable(format!("{m} (database {})", redact_url(url)))
        }
        other => other,
    }
}

impl PgStore {
    /// Connects, applies migrations, and starts the writer (and, with a signing key, the upkeep
    /// task) on the current Tokio runtime.
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgStore> {
        let config = base_config(url)?;
        let mut first = connect(&config, READER_SETUP)
            .await
            .map_err(|e| unreachable_at(url, e))?;
        schema::migrate(&mut first.client).await?;
        subtrees::fill_missing(&mut first).await?;
        let partitions = Arc::new(Partitions::default());
        partitions.ensure_ahead(&mut first, now_millis()).await?;
        let pool = Pool::new("reads", config.clone(), READER_SETUP, POOL_SIZE);
        pool.give(first);
        let lookups = Pool::new("lookups", config.clone(), LOOKUP_SETUP, LOOKUP_POOL_SIZE);
        let writer_conn = connect(&config, WRITER_SETUP)
            .await
            .map_err(|e| unreachable_at(url, e))?;
        let writer = Writer::spawn(config, Some(writer_conn), partitions.clone());
        let upkeep = options.signing_key.clone().map(|key| {
            let every_ms = options.checkpoint_every.as_millis() as i64;
            tokio::spawn(upkeep(pool.clone(), partitions.clone(), key, every_ms))
        });
        Ok(PgStore {
            pool,
            lookups,
            partitions,
            writer,
            options,
            upkeep,
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(task) = self.upkeep.take() {
            task.abort();
        }
    }
}

/// Signs the checkpoints that are due, makes the coming months' partitions, keeps the
/// partitions vacuumed and analysed, and finishes the clean-up of an erasure or redaction that
/// had to wait for older transactions, every [`UPKEEP_EVERY`], until the store is dropped.
async fn upkeep(pool: Arc<Pool>, partitions: Arc<Partitions>, key: SigningKey, every_ms: i64) {
    let mut ticks = tokio::time::interval(UPKEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let made = async {
            let mut conn = pool.get().await?;
            integrity::make_checkpoints(&mut conn, &key, every_ms, false, now_millis()).await
        }
        .await;
        match made {
            Ok(count) => stele_store::metrics::checkpoints_signed(count),
            Err(error) => tracing::warn!(%error, "signing checkpoints failed; will retry"),
        }
        let ahead = async {
            let mut conn = pool.get().await?;
            partitions.ensure_ahead(&mut conn, now_millis()).await
        }
        .await;
        if let Err(error) = ahead {
            tracing::warn!(%error, "creating the coming months' partitions failed; will retry");
        }
        if let Err(error) = vacuum_if_stale(&pool).await {
            tracing::warn!(%error, "vacuuming and analysing partitions failed; will retry");
        }
        let cleaned = async {
            let mut conn = pool.get().await?;
            erasure::clean_up(&mut conn, Duration::ZERO, false).await
        }
        .await;
        match cleaned {
            Ok(erasure::Cleaned::Done) => {}
            Ok(erasure::Cleaned::Waiting(holders)) => tracing::debug!(
                holders = holders.join(", "),
                "old values of an erasure or redaction wait for older transactions to end"
            ),
            Err(error) => tracing::warn!(
                %error,
                "removing the old values of an erasure or redaction failed; will retry"
            ),
        }
    }
}

/// Runs `VACUUM (ANALYZE)` on each month's partitions once a tenth of their rows changed since
/// the last analysis or a fifth since the last vacuum (at least 1,000), about as autovacuum would.
/// Some servers run with autovacuum off, and then:
/// - without statistics PostgreSQL plans a freshly loaded trail as an empty table, and every
///   query and verification slows down many times over (docs/benchmarks.md);
/// - without the visibility map that only `VACUUM` sets, no scan can be index-only, so the capped
///   count beside each page visits up to 10,000 table rows instead of index entries.
///
/// Only partitions are processed: they hold the rows, their statistics are what the plans of
/// pruned scans use, and processing the parent would sample every month again. With several
/// processes on one database, one at a time does it (the others skip their turn).
async fn vacuum_if_stale(pool: &Pool) -> R<()> {
    let conn = pool.get().await?;
    let ours: bool = conn
        .client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&VACUUM_LOCK])
        .await?
        .try_get(0)?;
    if !ours {
        return Ok(());
    }
    let done = vacuum_stale_partitions(&conn.client).await;
    conn.client
        .execute("SELECT pg_advisory_unlock($1)", &[&VACUUM_LOCK])
        .await?;
    done
}

/// The session-level advisory lock held while vacuuming (`STELEVAC` in ASCII); `VACUUM` cannot
/// run inside a transaction, so the lock cannot be transaction-scoped.
const VACUUM_LOCK: i64 = 0x5354_454c_4556_4143;

async fn vacuum_stale_partitions(client: &tokio_postgres::Client) -> R<()> {
    let stale = client
        .query(
            "SELECT s.relname::text FROM pg_stat_user_tables s
             JOIN pg_inherits i ON i.inhrelid = s.relid
             WHERE i.inhparent = 'entries'::regclass
               AND (s.n_mod_since_analyze > greatest(1000, s.n_live_tup / 10)
                    OR s.n_ins_since_vacuum > greatest(1000, s.n_live_tup / 5))",
            &[],
        )
        .await?;
    for row in stale {
        let partition: String = row.try_get(0)?;
        let Some(month) = partition.strip_prefix("entries_") else {
            continue;
        };
        let keys = format!("entry_keys_{month}");
        // Names come from the catalog; only ones partitions.rs makes are put into SQL.
        if partitions::is_partition_name(&partition) && partitions::is_partition_name(&keys) {
            client
                .batch_execute(&format!("VACUUM (ANALYZE) {partition}, {keys}"))
                .await?;
        }
    }
    Ok(())
}

fn new_public_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The organization columns as [`org_from_row`] reads them.
const ORG_COLUMNS: &str = "key, id, name, external_id, created_ms, platform";

fn org_from_row(r: &Row) -> R<Organization> {
    Ok(Organization {
        key: OrgKey::new(r.try_get(0)?),
        id: r.try_get(1)?,
        name: r.try_get(2)?,
        external_id: r.try_get(3)?,
        created_at: r.try_get(4)?,
        platform: r.try_get(5)?,
    })
}

/// The key columns as [`key_from_row`] reads them, from `k` (a key row) joined to `o` (its org).
const KEY_COLUMNS: &str = "k.id, k.org_key, o.id, k.name, k.scopes, k.prefix, k.created_ms, \
                           k.revoked_ms, o.platform";

fn key_from_row(r: &Row) -> R<ApiKeyInfo> {
    let scopes: &str = r.try_get(4)?;
    Ok(ApiKeyInfo {
        id: r.try_get(0)?,
        org: OrgKey::new(r.try_get(1)?),
        org_id: r.try_get(2)?,
        platform: r.try_get(8)?,
        name: r.try_get(3)?,
        scopes: Scope::parse_list(scopes).unwrap_or_default(),
        prefix: r.try_get(5)?,
        created_at: r.try_get(6)?,
        revoked_at: r.try_get(7)?,
    })
}

/// Text columns cannot hold U+0000 (see `writer.rs`); names with it are refused up front.
fn storable(what: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(StoreError::Conflict(format!(
            "the {what} contains a NUL character (U+0000), which cannot be stored"
        )));
    }
    Ok(())
}

/// Creates an organization with its chain's starting point, in one transaction.
async fn insert_org(pool: &Pool, new: &NewOrganization, platform: bool) -> Result<Organization> {
    storable("organization name", &new.name)?;
    if let Some(external_id) = &new.external_id {
        storable("external id", external_id)?;
    }
    let mut conn = pool.get().await?;
    let mut tx = conn.transaction().await?;
    let id = new_public_id("org");
    let created_at = now_millis();
    let inserted = tx
        .query_opt(
            "INSERT INTO orgs (id, name, external_id, created_ms, platform)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING RETURNING key",
            &[&id, &new.name, &new.external_id, &created_at, &platform],
        )
        .await?;
    let Some(row) = inserted else {
        // Which rule did it break? The name, unless only the external id is taken.
        let name_taken = tx
            .query_opt("SELECT 1 FROM orgs WHERE name = $1", &[&new.name])
            .await?
            .is_some();
        let what = if name_taken || platform {
            "name"
        } else {
            "external_id"
        };
        return Err(stele_store::org_conflict(
            StoreError::Conflict(what.into()),
            &new.name,
            new.external_id.as_deref(),
        ));
    };
    let key = OrgKey::new(row.try_get(0).map_err(Error::from)?);
    // The chain's starting point, and the row its writers lock.
    let frontier =
        serde_json::to_string(&Frontier::new()).map_err(|e| StoreError::Other(e.to_string()))?;
    tx.execute(
        "INSERT INTO chain_state (org_id, seq, head, frontier) VALUES ($1, 0, $2, $3)",
        &[&key.get(), &chain::genesis(&id).to_vec(), &frontier],
    )
    .await?;
    tx.commit().await?;
    Ok(Organization {
        key,
        id,
        name: new.name.clone(),
        external_id: new.external_id.clone(),
        created_at,
        platform,
    })
}

#[async_trait]
impl Tenancy for PgStore {
    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization> {
        insert_org(&self.pool, new, false).await
    }

    async fn find_org(&self, id_or_name: &str) -> Result<Organization> {
        if id_or_name.contains('\0') {
            return Err(StoreError::NotFound);
        }
        let mut conn = self.pool.get().await?;
        let row = conn
            .query_opt(
                &format!(
                    "SELECT {ORG_COLUMNS} FROM orgs
                     WHERE (id = $1 OR external_id = $1 OR name = $1) AND deleted_ms IS NULL
                     ORDER BY (id = $1) DESC, (external_id IS NOT DISTINCT FROM $1) DESC LIMIT 1"
                ),
                &[&id_or_name],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(org_from_row(&row)?)
    }

    async fn resolve_org(&self, reference: &str) -> Result<Option<Organization>> {
        if reference.contains('\0') {
            return Ok(None);
        }
        let mut conn = self.lookups.get().await?;
        let row = conn
            .query_opt(
                &format!(
                    "SELECT {ORG_COLUMNS} FROM orgs
                     WHERE (id = $1 OR external_id = $1) AND NOT platform AND deleted_ms IS NULL
                     ORDER BY (id = $1) DESC LIMIT 1"
                ),
                &[&reference],
            )
            .await?;
        Ok(row.as_ref().map(org_from_row).transpose()?)
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        let mut conn = self.pool.get().await?;
        let rows = conn
            .query(
                &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE deleted_ms IS NULL ORDER BY key"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(org_from_row).collect::<R<_>>()?)
    }

    async fn page_orgs(&self, request: &OrgPageRequest) -> Result<Vec<Organization>> {
        let external_id = request.external_id.as_deref();
        if external_id.is_some_and(|e| e.contains('\0')) {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().await?;
        let after: i64 = match request.after.as_deref() {
            None => 0,
            // No id holds a NUL (PostgreSQL's text cannot).
            Some(id) if id.contains('\0') => return Err(StoreError::NotFound),
            Some(id) => match conn
                .query_opt("SELECT key FROM orgs WHERE id = $1", &[&id])
                .await?
            {
                Some(row) => row.try_get(0).map_err(crate::error::Error::from)?,
                None => return Err(StoreError::NotFound),
            },
        };
        let rows = conn
            .query(
                &format!(
                    "SELECT {ORG_COLUMNS} FROM orgs
                     WHERE NOT platform AND deleted_ms IS NULL
                       AND key > $1
                       AND ($2::text IS NULL OR external_id = $2)
                     ORDER BY key LIMIT $3"
                ),
                &[&after, &external_id, &(request.limit as i64)],
            )
            .await?;
        Ok(rows.iter().map(org_from_row).collect::<R<_>>()?)
    }

    async fn update_org(&self, org: OrgKey, update: &OrgUpdate) -> Result<Organization> {
        if let Some(name) = &update.name {
            storable("organization name", name)?;
        }
        if let Some(Some(external_id)) = &update.external_id {
            storable("external id", external_id)?;
        }
        let mut conn = self.pool.get().await?;
        let row = conn
            .query_opt(
                &format!(
                    "UPDATE orgs SET name = coalesce($2, name),
                                     external_id = CASE WHEN $3 THEN $4 ELSE external_id END
                     WHERE key = $1 RETURNING {ORG_COLUMNS}"
                ),
                &[
                    &org.get(),
                    &update.name,
                    &update.external_id.is_some(),
                    &update.external_id.clone().flatten(),
                ],
            )
            .await
            .map_err(|e| {
                stele_store::org_conflict(
                    StoreError::from(e),
                    update.name.as_deref().unwrap_or_default(),
                    update.external_id.clone().flatten().as_deref(),
                )
            })?
            .ok_or(StoreError::NotFound)?;
        Ok(org_from_row(&row)?)
    }

    async fn delete_org(&self, org: OrgKey) -> Result<u64> {
        let now = now_millis();
        let mut conn = self.pool.get().await?;
        deletion::begin(&mut conn, org, now).await?;
        let mut removed = 0;
        loop {
            let n = deletion::remove_batch(&mut conn, org).await?;
            removed += n;
            if n == 0 {
                break;
            }
        }
        deletion::finish(&mut conn, org, now).await?;
        Ok(removed)
    }

    async fn unfinished_deletions(&self) -> Result<Vec<OrgKey>> {
        let mut conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT key FROM orgs WHERE deleted_ms IS NOT NULL AND purged_ms IS NULL",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0).map(OrgKey::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::from)?)
    }

    async fn platform_org(&self) -> Result<Organization> {
        let mut conn = self.pool.get().await?;
        let query = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE platform");
        if let Some(row) = conn.query_opt(&query, &[]).await? {
            return Ok(org_from_row(&row)?);
        }
        let mut names = Vec::new();
        for row in conn
            .query("SELECT name FROM orgs WHERE name LIKE 'platform%'", &[])
            .await?
        {
            names.push(row.try_get::<_, String>(0).map_err(Error::from)?);
        }
        let name = stele_store::platform_org_name(|name| Ok(names.iter().any(|n| n == name)))?;
        let new = NewOrganization {
            name,
            external_id: None,
        };
        match insert_org(&self.pool, &new, true).await {
            // Another server made it first (the index allows one).
            Err(StoreError::Conflict(_)) => match conn.query_opt(&query, &[]).await? {
                Some(row) => Ok(org_from_row(&row)?),
                None => Err(StoreError::Conflict(
                    "the platform's organization could not be made".into(),
                )),
            },
            other => other,
        }
    }

    async fn create_api_key(&self, org: OrgKey, key: NewApiKey) -> Result<ApiKeyInfo> {
        storable("key name", &key.name)?;
        storable("key prefix", &key.prefix)?;
        let mut conn = self.pool.get().await?;
        let row = conn
            .query_opt(
                &format!(
                    "WITH k AS (
                         INSERT INTO api_keys (id, org_key, name, scopes, prefix, hash, created_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *
                     )
                     SELECT {KEY_COLUMNS} FROM k JOIN orgs o ON o.key = k.org_key"
                ),
                &[
                    &new_public_id("key"),
                    &org.get(),
                    &key.name,
                    &Scope::join(&key.scopes),
                    &key.prefix,
                    &&key.hash.0[..],
                    &now_millis(),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(key_from_row(&row)?)
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<RevokedKey> {
        if key_id.contains('\0') {
            return Err(StoreError::NotFound);
        }
        let mut conn = self.pool.get().await?;
        // Only an unrevoked key is updated (a concurrent revocation waits for the row's lock and
        // then finds it revoked); a key revoked before is read as it is.
        let revoked = conn
            .query_opt(
                &format!(
                    "WITH k AS (
                         UPDATE api_keys SET revoked_ms = $1
                         WHERE id = $2 AND revoked_ms IS NULL RETURNING *
                     )
                     SELECT {KEY_COLUMNS} FROM k JOIN orgs o ON o.key = k.org_key"
                ),
                &[&now_millis(), &key_id],
            )
            .await?;
        let (row, by_this_call) = match revoked {
            Some(row) => (row, true),
            None => (
                conn.query_opt(
                    &format!(
                        "SELECT {KEY_COLUMNS} FROM api_keys k JOIN orgs o ON o.key = k.org_key
                         WHERE k.id = $1"
                    ),
                    &[&key_id],
                )
                .await?
                .ok_or(StoreError::NotFound)?,
                false,
            ),
        };
        Ok(RevokedKey {
            key: key_from_row(&row)?,
            by_this_call,
        })
    }

    async fn list_api_keys(&self, org: OrgKey) -> Result<Vec<ApiKeyInfo>> {
        let mut conn = self.pool.get().await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k JOIN orgs o ON o.key = k.org_key
                     WHERE k.org_key = $1 ORDER BY k.key"
                ),
                &[&org.get()],
            )
            .await?;
        Ok(rows.iter().map(key_from_row).collect::<R<_>>()?)
    }

    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<ApiKeyInfo>> {
        let mut conn = self.lookups.get().await?;
        let row = conn
            .query_opt(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k JOIN orgs o ON o.key = k.org_key
                     WHERE k.hash = $1 AND k.revoked_ms IS NULL AND o.deleted_ms IS NULL"
                ),
                &[&&hash.0[..]],
            )
            .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    async fn settings(&self, org: OrgKey) -> Result<OrgSettings> {
        let mut conn = self.pool.get().await?;
        Ok(retention::settings(&mut conn, org).await?)
    }

    async fn put_settings(&self, org: OrgKey, settings: &OrgSettings) -> Result<()> {
        let mut conn = self.pool.get().await?;
        Ok(retention::put_settings(&mut conn, org, settings, now_millis()).await?)
    }
}

#[async_trait]
impl Trail for PgStore {
    async fn append(&self, org: OrgKey, request: AppendRequest) -> Result<AppendOutcome> {
        self.writer.append(org, request).await
    }

    async fn list(&self, org: OrgKey, page: &PageRequest) -> Result<Page> {
        let mut conn = self.pool.get().await?;
        Ok(read::list(&mut conn, org, page, Some(self.options.count_budget)).await?)
    }

    async fn list_rows(&self, org: OrgKey, page: &PageRequest) -> Result<RowPage> {
        let mut conn = self.pool.get().await?;
        Ok(read::list_rows(&mut conn, org, page).await?)
    }

    async fn count(&self, org: OrgKey, filter: &EventFilter) -> Result<(u64, bool)> {
        let mut conn = self.pool.get().await?;
        Ok(read::count(&mut conn, org, filter, self.options.count_budget).await?)
    }

    async fn get(&self, org: OrgKey, id: &str) -> Result<Option<Entry>> {
        let mut conn = self.pool.get().await?;
        Ok(read::get(&mut conn, org, id).await?)
    }

    async fn correlated(
        &self,
        org: OrgKey,
        correlation_id: &str,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let mut conn = self.pool.get().await?;
        Ok(read::correlated(&mut conn, org, correlation_id, limit).await?)
    }

    async fn facets(&self, org: OrgKey) -> Result<Facets> {
        let mut conn = self.pool.get().await?;
        Ok(read::facets(&mut conn, org).await?)
    }

    async fn erase_person(&self, org: OrgKey, erasure: Erasure) -> Result<ErasureOutcome> {
        let done = self
            .rewrite(|conn, now| {
                let erasure = erasure.clone();
                Box::pin(async move { erasure::erase_person(conn, org, &erasure, now).await })
            })
            .await?;
        Ok(ErasureOutcome {
            erased_entries: done.entries,
            pseudonym: erasure.pseudonym,
            cleanup: self.clean_up().await?,
            record: done.receipt,
        })
    }

    async fn redact(&self, org: OrgKey, redaction: Redaction) -> Result<RedactionOutcome> {
        let done = self
            .rewrite(|conn, now| {
                let redaction = redaction.clone();
                Box::pin(async move { erasure::redact(conn, org, &redaction, now).await })
            })
            .await?;
        Ok(RedactionOutcome {
            seq: done.seq.expect("a redaction names its entry"),
            cleanup: self.clean_up().await?,
            record: done.receipt,
        })
    }
}

impl PgStore {
    /// Runs an erasure or redaction (`erasure.rs`), again when it conflicted with a writer.
    async fn rewrite<F>(&self, run: F) -> Result<erasure::Done>
    where
        F: for<'c> Fn(
            &'c mut pool::Conn,
            Millis,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = error::R<erasure::Done>> + Send + 'c>,
        >,
    {
        let mut attempt = 1;
        loop {
            let mut conn = self.pool.get().await?;
            let now = now_millis();
            // The record is an entry of this month.
            self.partitions
                .ensure(&mut conn, [partitions::Month::of(now)])
                .await?;
            match run(&mut conn, now).await {
                Err(e) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "rewrite conflicted; running it again");
                    attempt += 1;
                }
                result => return Ok(result?),
            }
        }
    }

    /// `erasure::clean_up`, timed; waits [`PgOptions::cleanup_wait`] at most for transactions
    /// older than the rewrite. If they still run, the rewrite stands (it committed) and the answer
    /// says the clean-up is left to the upkeep, which finishes it once they end.
    async fn clean_up(&self) -> Result<Cleanup> {
        let started = std::time::Instant::now();
        let mut conn = self.pool.get().await?;
        match erasure::clean_up(&mut conn, self.options.cleanup_wait, true).await? {
            erasure::Cleaned::Done => Ok(Cleanup {
                finished_at: now_millis(),
                duration_ms: started.elapsed().as_millis() as u64,
            }),
            erasure::Cleaned::Waiting(holders) => Err(StoreError::CleanupPending(format!(
                "the rewrite is made and recorded, but the database files still hold the old \
                 values: transactions that began before it still run ({}); the server removes \
                 the old values once they end",
                holders.join(", ")
            ))),
        }
    }
}

#[async_trait]
impl Integrity for PgStore {
    async fn checkpoints(&self, org: OrgKey, limit: usize) -> Result<Vec<SignedCheckpoint>> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.snapshot().await?;
        let list = integrity::checkpoints(&mut tx, org, Some(limit)).await?;
        tx.commit().await?;
        Ok(list)
    }

    async fn checkpoint_key_ids(&self) -> Result<Vec<String>> {
        let mut conn = self.pool.get().await?;
        Ok(integrity::checkpoint_key_ids(&mut conn).await?)
    }

    async fn claim_signing_key(&self, key_id: &str) -> Result<String> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.transaction().await?;
        tx.execute(
            "INSERT INTO signing_key (key_id, claimed_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key_id, &now_millis()],
        )
        .await?;
        let row = tx
            .query_opt("SELECT key_id FROM signing_key", &[])
            .await?
            .ok_or_else(|| Error::Store(StoreError::Other("no signing key recorded".into())))?;
        let recorded: String = row.try_get(0).map_err(Error::from)?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn checkpoint_now(&self) -> Result<usize> {
        let Some(key) = &self.options.signing_key else {
            return Ok(0);
        };
        let mut conn = self.pool.get().await?;
        let count = integrity::make_checkpoints(&mut conn, key, 0, true, now_millis()).await?;
        stele_store::metrics::checkpoints_signed(count);
        Ok(count)
    }

    async fn shutdown(&self) -> Result<()> {
        // Everything committed is durable already; what is left is sealing the chain's tail.
        self.checkpoint_now().await?;
        Ok(())
    }

    async fn checkpoint_at(&self, org: OrgKey, seq: Seq) -> Result<Option<SignedCheckpoint>> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.snapshot().await?;
        let found = integrity::checkpoint_at(&mut tx, org, seq).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn entry_hashes(&self, org: OrgKey, seqs: RangeInclusive<Seq>) -> Result<Vec<Hash>> {
        let mut conn = self.pool.get().await?;
        Ok(integrity::entry_hashes(&mut conn, org, seqs).await?)
    }

    async fn entry_hashes_of(
        &self,
        org: OrgKey,
        spans: Vec<RangeInclusive<Seq>>,
    ) -> Result<Vec<Vec<Hash>>> {
        let mut conn = self.pool.get().await?;
        Ok(integrity::entry_hashes_of(&mut conn, org, &spans).await?)
    }

    async fn stored_subtrees(&self, org: OrgKey, subtrees: Vec<Subtree>) -> Result<Vec<Hash>> {
        let mut conn = self.pool.get().await?;
        Ok(subtrees::stored(&mut conn, org, &subtrees).await?)
    }

    async fn personal_digest(
        &self,
        org: OrgKey,
        seq: Seq,
    ) -> Result<Option<(Hash, stele_core::seal::Seal)>> {
        let mut conn = self.pool.get().await?;
        Ok(integrity::personal_digest(&mut conn, org, seq).await?)
    }

    async fn verify_since(
        &self,
        org: OrgKey,
        key: Option<&PublicKey>,
        since: Option<VerifiedPoint>,
    ) -> Result<VerifyReport> {
        let mut conn = self.pool.get().await?;
        Ok(integrity::verify(&mut conn, org, key, since).await?)
    }

    async fn last_verified(&self, org: OrgKey) -> Result<Option<VerifiedPoint>> {
        let mut conn = self.pool.get().await?;
        Ok(integrity::last_verified(&mut conn, org).await?)
    }

    async fn record_verified(&self, org: OrgKey, point: &VerifiedPoint) -> Result<()> {
        let mut conn = self.pool.get().await?;
        Ok(integrity::record_verified(&mut conn, org, point, now_millis()).await?)
    }
}

#[async_trait]
impl Retention for PgStore {
    async fn expired_entries(
        &self,
        org: OrgKey,
        cutoffs: &Cutoffs,
        resume_after: i64,
        limit: usize,
    ) -> Result<ExpiredBatch> {
        let mut conn = self.pool.get().await?;
        Ok(retention::expired_entries(&mut conn, org, cutoffs, resume_after, limit).await?)
    }

    async fn prune_entries(
        &self,
        org: OrgKey,
        cutoffs: &Cutoffs,
        seqs: &[Seq],
    ) -> Result<RemovedPerChannel> {
        let mut conn = self.pool.get().await?;
        let pruned = retention::prune_entries(&mut conn, org, cutoffs, seqs).await?;
        if !pruned.months.is_empty() {
            // The entries are gone and committed; dropping the months they emptied is upkeep,
            // retried by the next run if it cannot be done now.
            if let Err(error) = self.drop_emptied_months(&mut conn, pruned.months).await {
                tracing::warn!(%error, "dropping emptied partitions failed; will retry");
            }
        }
        Ok(pruned.removed)
    }

    async fn claim_scheduled_run(&self, name: &str, due: Millis) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(retention::claim_scheduled_run(&mut conn, name, due).await?)
    }
}

#[async_trait]
impl ExportJobs for PgStore {
    async fn create_export_job(&self, org: OrgKey, job: NewExportJob) -> Result<ExportJob> {
        let mut conn = self.pool.get().await?;
        Ok(export_jobs::create(&mut conn, new_public_id("exp"), org, job).await?)
    }

    async fn export_job(&self, org: OrgKey, id: &str) -> Result<Option<ExportJob>> {
        let mut conn = self.pool.get().await?;
        Ok(export_jobs::find(&mut conn, org, id).await?)
    }

    async fn touch_export_job(&self, id: &str, now: Millis) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(export_jobs::touch(&mut conn, id, now).await?)
    }

    async fn finish_export_job(&self, id: &str, outcome: ExportJobOutcome) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(export_jobs::finish(&mut conn, id, outcome).await?)
    }

    async fn add_export_link(&self, id: &str, token_hash: [u8; 32], now: Millis) -> Result<()> {
        let mut conn = self.pool.get().await?;
        Ok(export_jobs::add_link(&mut conn, id, token_hash, now).await?)
    }

    async fn export_job_by_link(
        &self,
        id: &str,
        token_hash: [u8; 32],
    ) -> Result<Option<ExportJob>> {
        let mut conn = self.pool.get().await?;
        Ok(export_jobs::by_link(&mut conn, id, token_hash).await?)
    }

    async fn sweep_export_jobs(&self, sweep: ExportSweep) -> Result<ExportSweepOutcome> {
        let mut conn = self.pool.get().await?;
        Ok(export_jobs::sweep(&mut conn, sweep).await?)
    }

    async fn live_export_job_ids(&self, now: Millis) -> Result<Vec<String>> {
        let mut conn = self.pool.get().await?;
        Ok(export_jobs::live_ids(&mut conn, now).await?)
    }
}

#[async_trait]
impl Streams for PgStore {
    async fn create_stream(&self, org: OrgKey, new: NewStream) -> Result<Stream> {
        let mut conn = self.pool.get().await?;
        Ok(streams::create(&mut conn, new_public_id("str"), org, new).await?)
    }

    async fn streams(&self, org: OrgKey) -> Result<Vec<Stream>> {
        let mut conn = self.pool.get().await?;
        Ok(streams::list(&mut conn, org).await?)
    }

    async fn stream(&self, org: OrgKey, id: &str) -> Result<Option<Stream>> {
        let mut conn = self.pool.get().await?;
        Ok(streams::find(&mut conn, org, id).await?)
    }

    async fn change_stream(&self, org: OrgKey, id: &str, change: StreamChange) -> Result<Stream> {
        let mut conn = self.pool.get().await?;
        Ok(streams::change(&mut conn, org, id, change).await?)
    }

    async fn delete_stream(&self, org: OrgKey, id: &str) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(streams::delete(&mut conn, org, id).await?)
    }

    async fn claim_streams(&self, claim: StreamClaim) -> Result<Vec<Stream>> {
        let mut conn = self.pool.get().await?;
        Ok(streams::claim(&mut conn, &claim).await?)
    }

    async fn release_streams(&self, owner: &str) -> Result<()> {
        let mut conn = self.pool.get().await?;
        Ok(streams::release(&mut conn, owner).await?)
    }

    async fn record_delivery(
        &self,
        id: &str,
        owner: &str,
        revision: u64,
        report: DeliveryReport,
    ) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(streams::record_delivery(&mut conn, id, owner, revision, report).await?)
    }

    async fn entries_after(&self, org: OrgKey, after: Seq, limit: usize) -> Result<Vec<Entry>> {
        let mut conn = self.pool.get().await?;
        Ok(read::entries_after(&mut conn, org, after, limit).await?)
    }

    async fn entries_after_each(
        &self,
        wants: Vec<(OrgKey, Seq, usize)>,
    ) -> Result<Vec<Vec<Entry>>> {
        // One connection for them all: the reads go one after the other without a pool's turn.
        let mut conn = self.pool.get().await?;
        let mut each = Vec::with_capacity(wants.len());
        for (org, after, limit) in wants {
            each.push(read::entries_after(&mut conn, org, after, limit).await?);
        }
        Ok(each)
    }

    async fn head_seq(&self, org: OrgKey) -> Result<Seq> {
        let mut conn = self.pool.get().await?;
        Ok(streams::head_seq(&mut conn, org).await?)
    }

    async fn stream_progress(&self, id: &str) -> Result<Vec<OrgProgress>> {
        let mut conn = self.pool.get().await?;
        Ok(streams::progress(&mut conn, id).await?)
    }

    async fn stream_oldest_waiting(&self, id: &str) -> Result<Option<Millis>> {
        let mut conn = self.pool.get().await?;
        Ok(streams::oldest_waiting(&mut conn, id).await?)
    }
}

#[async_trait]
impl RetracedViewer for PgStore {
    async fn create_saved_export(&self, org: OrgKey, export: SavedExport) -> Result<()> {
        let mut conn = self.pool.get().await?;
        Ok(retraced_viewer::create_saved_export(&mut conn, org, export).await?)
    }

    async fn saved_exports(&self, org: OrgKey, limit: usize) -> Result<Vec<SavedExport>> {
        let mut conn = self.pool.get().await?;
        Ok(retraced_viewer::saved_exports(&mut conn, org, limit).await?)
    }

    async fn saved_export(&self, org: OrgKey, id: &str) -> Result<Option<SavedExport>> {
        let mut conn = self.pool.get().await?;
        Ok(retraced_viewer::find_saved_export(&mut conn, org, id).await?)
    }

    async fn create_viewer_api_token(&self, org: OrgKey, token: NewViewerApiToken) -> Result<()> {
        let mut conn = self.pool.get().await?;
        Ok(retraced_viewer::create_token(&mut conn, org, token).await?)
    }

    async fn viewer_api_tokens(&self, org: OrgKey) -> Result<Vec<ViewerApiToken>> {
        let mut conn = self.pool.get().await?;
        Ok(retraced_viewer::tokens(&mut conn, org).await?)
    }

    async fn rename_viewer_api_token(
        &self,
        org: OrgKey,
        id: &str,
        display_name: &str,
    ) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(retraced_viewer::rename_token(&mut conn, org, id, display_name).await?)
    }

    async fn delete_viewer_api_token(&self, org: OrgKey, id: &str) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(retraced_viewer::delete_token(&mut conn, org, id).await?)
    }
}

#[async_trait]
impl ActionSchemas for PgStore {
    async fn create_action_schema(
        &self,
        org: OrgKey,
        schema: NewActionSchema,
    ) -> Result<ActionSchema> {
        let mut conn = self.pool.get().await?;
        Ok(action_schemas::create(&mut conn, org, schema).await?)
    }

    async fn action_schemas(&self, org: OrgKey, action: &str) -> Result<Vec<ActionSchema>> {
        let mut conn = self.pool.get().await?;
        Ok(action_schemas::list(&mut conn, org, action).await?)
    }

    async fn action_schema(
        &self,
        org: OrgKey,
        action: &str,
        version: Option<u32>,
    ) -> Result<Option<ActionSchema>> {
        let mut conn = self.pool.get().await?;
        Ok(action_schemas::find(&mut conn, org, action, version).await?)
    }
}

#[async_trait]
impl Members for PgStore {
    async fn create_member(&self, org: OrgKey, member: NewMember) -> Result<Member> {
        let mut conn = self.pool.get().await?;
        Ok(members::create(&mut conn, new_public_id("mem"), org, member).await?)
    }

    async fn member(&self, org: OrgKey, id: &str) -> Result<Option<Member>> {
        let mut conn = self.pool.get().await?;
        Ok(members::find(&mut conn, org, id).await?)
    }

    async fn memberships_by_email(&self, email: &str) -> Result<Vec<Member>> {
        let mut conn = self.pool.get().await?;
        Ok(members::by_email(&mut conn, email).await?)
    }

    async fn list_members(&self, org: OrgKey) -> Result<Vec<Member>> {
        let mut conn = self.pool.get().await?;
        Ok(members::list(&mut conn, org).await?)
    }

    async fn update_member(&self, org: OrgKey, id: &str, update: MemberUpdate) -> Result<Member> {
        let mut conn = self.pool.get().await?;
        Ok(members::update(&mut conn, org, id, update).await?)
    }

    async fn remove_member(&self, org: OrgKey, id: &str) -> Result<Member> {
        let mut conn = self.pool.get().await?;
        Ok(members::remove(&mut conn, org, id).await?)
    }

    async fn create_session(&self, session: NewSession) -> Result<()> {
        let mut conn = self.pool.get().await?;
        Ok(members::create_session(&mut conn, session).await?)
    }

    async fn switch_session(
        &self,
        token_hash: &SessionHash,
        member_id: &str,
        now: Millis,
    ) -> Result<Option<Session>> {
        let mut conn = self.pool.get().await?;
        Ok(members::switch_session(&mut conn, token_hash, member_id, now).await?)
    }

    async fn session(&self, token_hash: &SessionHash, now: Millis) -> Result<Option<Session>> {
        let mut conn = self.lookups.get().await?;
        Ok(members::session(&mut conn, token_hash, now).await?)
    }

    async fn touch_session(&self, token_hash: &SessionHash, now: Millis) -> Result<()> {
        let mut conn = self.pool.get().await?;
        Ok(members::touch_session(&mut conn, token_hash, now).await?)
    }

    async fn revoke_session(&self, token_hash: &SessionHash, now: Millis) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(members::revoke_session(&mut conn, token_hash, now).await?)
    }

    async fn forget_sessions(&self, ended_before: Millis) -> Result<u64> {
        let mut conn = self.pool.get().await?;
        Ok(members::forget_sessions(&mut conn, ended_before).await?)
    }
}

#[async_trait]
impl PrintLog for PgStore {
    async fn record_print(
        &self,
        org: OrgKey,
        fields: PrintFields,
        audit: PrintAudit,
    ) -> Result<Print> {
        match self
            .write_print_log(org, print_log::Write::Record(Box::new(fields)), audit)
            .await?
        {
            print_log::Written::Recorded(print) => Ok(*print),
            _ => Err(StoreError::Other("unexpected print log outcome".into())),
        }
    }

    async fn print(&self, org: OrgKey, id: PrintId) -> Result<Option<Print>> {
        let mut conn = self.pool.get().await?;
        Ok(print_log::find(&mut conn, org, id).await?)
    }

    async fn list_prints(
        &self,
        org: OrgKey,
        filter: &PrintFilter,
        limit: u32,
        offset: u64,
    ) -> Result<PrintPage> {
        let mut conn = self.pool.get().await?;
        Ok(print_log::list(&mut conn, org, filter, limit, offset).await?)
    }

    async fn print_stats(&self, org: OrgKey, filter: &PrintFilter) -> Result<PrintStats> {
        let mut conn = self.pool.get().await?;
        Ok(print_log::stats(&mut conn, org, filter).await?)
    }

    async fn classify_print(
        &self,
        org: OrgKey,
        id: PrintId,
        classification: Classification,
        audit: PrintAudit,
    ) -> Result<(Print, Print)> {
        match self
            .write_print_log(org, print_log::Write::Classify(id, classification), audit)
            .await?
        {
            print_log::Written::Classified(pair) => Ok(*pair),
            _ => Err(StoreError::Other("unexpected print log outcome".into())),
        }
    }

    async fn delete_print(&self, org: OrgKey, id: PrintId, audit: PrintAudit) -> Result<Print> {
        match self
            .write_print_log(org, print_log::Write::Delete(id), audit)
            .await?
        {
            print_log::Written::Deleted(print) => Ok(*print),
            _ => Err(StoreError::Other("unexpected print log outcome".into())),
        }
    }

    async fn clear_prints(&self, org: OrgKey, audit: PrintAudit) -> Result<u64> {
        match self
            .write_print_log(org, print_log::Write::Clear, audit)
            .await?
        {
            print_log::Written::Cleared(n) => Ok(n),
            _ => Err(StoreError::Other("unexpected print log outcome".into())),
        }
    }
}

impl PgStore {
    /// Runs a print log write with its audit entries (`print_log::write`), again after a
    /// deadlock, and again after making the partition of a month its entries need that another
    /// process dropped (or that no one made yet: an entry occurs at the server's clock).
    async fn write_print_log(
        &self,
        org: OrgKey,
        write: print_log::Write,
        audit: PrintAudit,
    ) -> Result<print_log::Written> {
        let mut months = std::collections::BTreeSet::from([partitions::Month::of(now_millis())]);
        let mut attempt = 1;
        loop {
            let mut conn = self.pool.get().await?;
            self.partitions
                .ensure(&mut conn, months.iter().copied())
                .await?;
            let mut needed = std::collections::BTreeSet::new();
            let result =
                print_log::write(&mut conn, org, &write, &audit, now_millis(), &mut needed).await;
            match result {
                Err(e) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "print log write conflicted; running it again");
                    attempt += 1;
                }
                Err(e) if is_missing_partition(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "a month's partition is missing; making it");
                    self.partitions.forget(needed.iter().copied());
                    months.extend(needed);
                    attempt += 1;
                }
                result => return Ok(result?),
            }
        }
    }

    /// Drops the partitions of the months a prune touched, and of earlier months the statistics
    /// show empty (a drop an earlier run had to leave), that no longer hold any entry.
    async fn drop_emptied_months(
        &self,
        conn: &mut pool::Conn,
        touched: std::collections::BTreeSet<partitions::Month>,
    ) -> R<()> {
        let now = now_millis();
        let mut months = touched;
        months.extend(partitions::emptied_months(conn, now).await?);
        let dropped = partitions::drop_empty(conn, &self.partitions, &months, now).await?;
        for month in dropped {
            tracing::info!(
                partitions = %format!("{}, {}", month.partition_of("entries"), month.partition_of("entry_keys")),
                "dropped the partitions of a month that retention emptied"
            );
        }
        Ok(())
    }
}
