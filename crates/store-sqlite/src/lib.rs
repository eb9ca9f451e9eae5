//! Stele's embedded backend: one SQLite file in WAL mode, written by a single group-committing
//! writer thread ([`writer`]) and read by a small pool of connections ([`read`]), and its search
//! index in a second file beside it, written behind the commit by a thread of its own
//! ([`search`]).

mod action_schemas;
mod codec;
mod deletion;
mod dict;
mod erasure;
mod error;
mod export_jobs;
mod integrity;
mod members;
pub mod memory;
mod packed;
mod print_log;
mod read;
mod retention;
mod retraced_viewer;
mod schema;
mod search;
mod streams;
mod subtrees;
mod terms;
mod writer;
pub mod yardstick;

pub use packed::texts_packed_in;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use stele_core::checkpoint::{PublicKey, SignedCheckpoint, SigningKey};
use stele_core::filter::EventFilter;
use stele_core::merkle::{Hash, Subtree};
use stele_core::params::PageRequest;
use stele_core::time::Millis;
use stele_core::time::now_millis;
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
use tokio::sync::Semaphore;

use crate::dict::Dict;
use crate::error::map_err;
use crate::writer::Writer;

/// Read connections kept open; reads beyond this wait for one (SQLite reads are CPU-bound, and
/// the machine this is sized for has few cores).
const READERS: usize = 4;
/// Connections for bulk scans (export walks, retention), each with a small page cache and no
/// memory map.
const BULK_READERS: usize = 2;
/// The bulk readers' page cache, in KiB. A scan reads each page once, so a large cache would only
/// hold memory (an export of any size would grow the process by the whole cache) and, shared
/// with the interactive reads, would push their hot pages out. For the same reason they read
/// with plain reads rather than through a memory map, whatever `--sqlite-mmap-mib` says: a scan
/// of the whole file through the map would make every page of it resident in the process (an
/// export of 1M entries added 300 MB of RSS that way), where plain reads leave them to the
/// kernel's page cache.
const BULK_CACHE_KIB: i64 = 2048;

pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReaderPool>,
    /// For scans of many pages (`list_rows`, `expired_entries`): see [`BULK_CACHE_KIB`].
    bulk: Arc<ReaderPool>,
    dict: Arc<Dict>,
    /// A read connection of its own for API key lookups (see `authenticate`).
    auth: Mutex<Connection>,
    options: SqliteOptions,
    /// Held for its `Drop`, which stops the thread.
    _maintenance: Maintenance,
    /// The search indexer (see [`search`]); its `Drop` stops the thread.
    search: search::Feed,
    _indexer: search::Indexer,
}

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Signs the chain's checkpoints. Without one (an operator's CLI command) no checkpoint is
    /// made; the server, which has the key, makes them.
    pub signing_key: Option<SigningKey>,
    /// A checkpoint is signed at least this often for an organization with new entries.
    pub checkpoint_every: Duration,
    /// How long one prune transaction may run (25 ms, `retention::PRUNE_SLICE`; tests shorten it to
    /// make every entry a slice of its own).
    pub prune_slice: Duration,
    /// How much of the database file each interactive connection (the writer, the readers, the
    /// key lookups) reads through a memory map instead of plain reads ([`DEFAULT_MMAP_BYTES`]).
    pub mmap_bytes: u64,
}

/// The memory map of each interactive connection, unless configured (`--sqlite-mmap-mib`):
/// 2 GiB, which SQLite lowers to the most it maps ([`SQLITE_MMAP_LIMIT`]). Measured
/// (docs/benchmarks.md, "The memory map" and "What the memory is"): through the map, the pages a
/// connection reads stay in the kernel's page cache, shared and reclaimable; beyond it (or with
/// no map) each reader copies them into its own page cache, which WAL mode empties whenever
/// another connection has written, and filling and emptying those caches under ingest left the
/// allocator holding more and more memory (a 30-minute soak grew by 48 to 80% once the file
/// outgrew a 256 MiB map, and stayed flat with 2 GiB). First pages, counts, exports and ingest
/// measured the same with either. The map is address space, not memory: only `VmRSS` looks
/// larger, as it counts the mapped file pages a connection has touched.
pub const DEFAULT_MMAP_BYTES: u64 = 2048 * 1024 * 1024;

/// The most SQLite maps of a file (its compile-time `SQLITE_MAX_MMAP_SIZE`, 0x7fff0000 on
/// Linux): a larger `mmap_size` is lowered to it.
pub const SQLITE_MMAP_LIMIT: u64 = 0x7fff_0000;

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            signing_key: None,
            checkpoint_every: Duration::from_secs(60),
            prune_slice: retention::PRUNE_SLICE,
            mmap_bytes: DEFAULT_MMAP_BYTES,
        }
    }
}

/// Background upkeep on its own thread, so the writer never pays for it: copies the WAL back
/// into the database file every [`WAL_CHECKPOINT_EVERY`] (`PASSIVE`: never blocks the writer or
/// readers; SQLite restarts the WAL once a checkpoint has caught up), sets the memory and size
/// gauges of `/metrics` ([`memory::report`]), and asks the writer to sign chain checkpoints that
/// are due.
struct Maintenance {
    stop: Arc<AtomicBool>,
}

const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// How long a graceful stop waits for the search index to take in what is queued.
const INDEX_AT_SHUTDOWN: Duration = Duration::from_secs(5);
/// Chain checkpoints are considered every this many WAL ticks (5 s).
const CHAIN_CHECKPOINT_TICKS: u64 = 10;

impl Maintenance {
    fn spawn(path: &Path, writer: Writer, options: &SqliteOptions) -> Result<Maintenance> {
        let conn = Connection::open(path).map_err(map_err)?;
        conn.busy_timeout(Duration::from_secs(1)).map_err(map_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let key = options.signing_key.clone();
        let every_ms = options.checkpoint_every.as_millis() as i64;
        std::thread::Builder::new()
            .name("stele-sqlite-upkeep".into())
            .spawn(move || {
                for tick in 1u64.. {
                    std::thread::sleep(WAL_CHECKPOINT_EVERY);
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(error) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!(%error, "WAL checkpoint failed; will retry");
                    }
                    memory::report(&conn);
                    // Whether a chain checkpoint is due is cheap to ask, but it is a write
                    // transaction: ask every few seconds, not at every WAL checkpoint.
                    if tick % CHAIN_CHECKPOINT_TICKS == 0
                        && let Some(key) = key.clone()
                    {
                        let made = writer.run_blocking(move |tx| {
                            integrity::make_checkpoints(tx, &key, every_ms, false, now_millis())
                        });
                        match made {
                            Ok(count) => stele_store::metrics::checkpoints_signed(count),
                            Err(error) => {
                                tracing::warn!(%error, "signing checkpoints failed; will retry")
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Other(format!("starting the upkeep thread: {e}")))?;
        Ok(Maintenance { stop })
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// A connection taken from a [`ReaderPool`] for as long as this lives: put back (and its permit
/// returned) when dropped. One lost with a thread that panicked is not put back, and its permit
/// stays taken, so that the pool never promises a connection it does not have.
struct Borrowed {
    pool: Arc<ReaderPool>,
    conn: Option<Connection>,
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().expect("reader pool").push(conn);
            self.pool.permits.add_permits(1);
        }
    }
}

impl ReaderPool {
    /// An idle connection, if there is one now (for work that can do without it).
    fn try_borrow(self: &Arc<Self>) -> Option<Borrowed> {
        self.permits.try_acquire().ok()?.forget();
        let conn = self.idle.lock().expect("reader pool").pop();
        if conn.is_none() {
            self.permits.add_permits(1);
        }
        Some(Borrowed {
            pool: self.clone(),
            conn: Some(conn?),
        })
    }

    /// `n` read-only connections with a memory map of `mmap_bytes`; with `bulk_cache_kib`, for
    /// scans: that page cache size (see [`BULK_CACHE_KIB`]).
    /// Each connection has the search index file attached (see [`search::attach`]).
    fn open(
        path: &Path,
        n: usize,
        mmap_bytes: u64,
        bulk_cache_kib: Option<i64>,
    ) -> Result<ReaderPool> {
        let mut idle = Vec::with_capacity(n);
        for _ in 0..n {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(map_err)?;
            schema::configure_reader(&reader, mmap_bytes).map_err(map_err)?;
            search::attach(&reader, path, mmap_bytes).map_err(map_err)?;
            if let Some(kib) = bulk_cache_kib {
                for schema in ["main", search::SCHEMA_NAME] {
                    reader
                        .pragma_update(Some(schema), "cache_size", -kib)
                        .map_err(map_err)?;
                }
            }
            read::register_functions(&reader).map_err(map_err)?;
            reader.set_prepared_statement_cache_capacity(128);
            idle.push(reader);
        }
        Ok(ReaderPool {
            idle: Mutex::new(idle),
            permits: Semaphore::new(n),
        })
    }
}

/// Makes the database readable by its owner alone: the directory Stele creates for it is
/// `0700`, and the database file `0600` (made so before SQLite first opens it, because SQLite
/// gives its `-wal` and `-shm` files the database file's mode). A database left more open by an
/// older version is closed down, with its `-wal` and `-shm`; an existing directory is the
/// operator's and is left as it is.
pub(crate) fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    if !path.exists() {
        // An empty file is an empty SQLite database.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
    }
    let sidecar = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    for file in [path.to_path_buf(), sidecar("-wal"), sidecar("-shm")] {
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations, without a signing
    /// key (see [`SqliteOptions`]).
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore> {
        owner_only(path)
            .map_err(|e| StoreError::Other(format!("preparing {}: {e}", path.display())))?;
        let mut conn = Connection::open(path).map_err(map_err)?;
        schema::configure(&conn, options.mmap_bytes).map_err(map_err)?;
        schema::migrate(&mut conn).map_err(map_err)?;
        subtrees::fill_missing(&conn)?;
        // The writer's SQL looks inside packed columns too (an erasure's choice of rows).
        read::register_functions(&conn).map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        let dict = Arc::new(Dict::default());
        dict.refresh(&conn).map_err(map_err)?;
        let (search, indexer) = search::start(path, dict.clone())?;

        let readers = ReaderPool::open(path, READERS, options.mmap_bytes, None)?;
        let bulk = ReaderPool::open(path, BULK_READERS, 0, Some(BULK_CACHE_KIB))?;
        let writer = Writer::spawn(conn, dict.clone(), search.clone())
            .map_err(|e| StoreError::Other(format!("starting the writer thread: {e}")))?;
        let auth = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(map_err)?;
        schema::configure_reader(&auth, options.mmap_bytes).map_err(map_err)?;
        let maintenance = Maintenance::spawn(path, writer.clone(), &options)?;
        Ok(SqliteStore {
            _maintenance: maintenance,
            search,
            _indexer: indexer,
            auth: Mutex::new(auth),
            options,
            path: path.to_path_buf(),
            writer,
            readers: Arc::new(readers),
            bulk: Arc::new(bulk),
            dict,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on a pooled connection, off the async runtime.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Dict) -> Result<T> + Send + 'static,
    {
        self.read_on(&self.readers, f).await
    }

    /// A read that scans many pages, on a bulk connection (see [`BULK_CACHE_KIB`]).
    async fn read_bulk<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Dict) -> Result<T> + Send + 'static,
    {
        self.read_on(&self.bulk, f).await
    }

    async fn read_on<T, F>(&self, pool: &Arc<ReaderPool>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Dict) -> Result<T> + Send + 'static,
    {
        let _permit = pool
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("closed".into()))?;
        let pool = pool.clone();
        let dict = self.dict.clone();
        tokio::task::spawn_blocking(move || {
            // The semaphore guarantees a connection is idle.
            let conn = pool.idle.lock().expect("reader pool").pop();
            let conn = conn.ok_or_else(|| StoreError::Other("reader pool empty".into()))?;
            let result = f(&conn, &dict);
            pool.idle.lock().expect("reader pool").push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Other(format!("read task failed: {e}")))?
    }
}

/// Runs a read in one read transaction: every statement of it sees the database (and the search
/// index file) as of the first statement that reads each, which `read::Unindexed` relies on.
/// Every read that consults the search index runs in one.
fn in_read_transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("BEGIN").map_err(map_err)?;
    let result = f(conn);
    // An interrupted statement (a count out of time) may have ended the transaction already.
    if !conn.is_autocommit() {
        conn.execute_batch("COMMIT").map_err(map_err)?;
    }
    result
}

fn new_public_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

const ORG_COLUMNS: &str = "key, id, name, external_id, created_ms, platform";

fn org_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization {
        key: OrgKey::new(r.get(0)?),
        id: r.get(1)?,
        name: r.get(2)?,
        external_id: r.get(3)?,
        created_at: r.get(4)?,
        platform: r.get(5)?,
    })
}

/// An organization's name or external id already taken, said as such.
fn org_conflict(e: rusqlite::Error, name: &str, external_id: Option<&str>) -> StoreError {
    stele_store::org_conflict(map_err(e), name, external_id)
}

const KEY_COLUMNS: &str = "k.id, k.org_key, o.id, k.name, k.scopes, k.prefix, k.created_ms, \
                           k.revoked_ms, o.platform";

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyInfo> {
    let scopes: String = r.get(4)?;
    Ok(ApiKeyInfo {
        id: r.get(0)?,
        org: OrgKey::new(r.get(1)?),
        org_id: r.get(2)?,
        platform: r.get(8)?,
        name: r.get(3)?,
        scopes: Scope::parse_list(&scopes).unwrap_or_default(),
        prefix: r.get(5)?,
        created_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

fn insert_org(tx: &Transaction<'_>, new: NewOrganization, platform: bool) -> Result<Organization> {
    let org = Organization {
        key: OrgKey::new(0),
        id: new_public_id("org"),
        name: new.name,
        external_id: new.external_id,
        created_at: now_millis(),
        platform,
    };
    tx.execute(
        "INSERT INTO orgs (id, name, external_id, created_ms, platform) VALUES (?, ?, ?, ?, ?)",
        params![org.id, org.name, org.external_id, org.created_at, platform],
    )
    .map_err(|e| org_conflict(e, &org.name, org.external_id.as_deref()))?;
    Ok(Organization {
        key: OrgKey::new(tx.last_insert_rowid()),
        ..org
    })
}

#[async_trait]
impl Tenancy for SqliteStore {
    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization> {
        let new = new.clone();
        self.writer.run(move |tx| insert_org(tx, new, false)).await
    }

    async fn find_org(&self, id_or_name: &str) -> Result<Organization> {
        let needle = id_or_name.to_string();
        self.read(move |conn, _| {
            conn.query_row(
                &format!(
                    "SELECT {ORG_COLUMNS} FROM orgs
                     WHERE (id = ?1 OR external_id = ?1 OR name = ?1) AND deleted_ms IS NULL
                     ORDER BY (id = ?1) DESC, (external_id IS ?1) DESC LIMIT 1"
                ),
                [needle],
                org_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn resolve_org(&self, reference: &str) -> Result<Option<Organization>> {
        let needle = reference.to_string();
        self.read(move |conn, _| {
            conn.prepare_cached(&format!(
                "SELECT {ORG_COLUMNS} FROM orgs
                 WHERE (id = ?1 OR external_id = ?1) AND NOT platform AND deleted_ms IS NULL
                 ORDER BY (id = ?1) DESC LIMIT 1"
            ))
            .and_then(|mut s| s.query_row([needle], org_from_row).optional())
            .map_err(map_err)
        })
        .await
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        self.read(|conn, _| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {ORG_COLUMNS} FROM orgs WHERE deleted_ms IS NULL ORDER BY key"
                ))
                .map_err(map_err)?;
            stmt.query_map([], org_from_row)
                .and_then(|rows| rows.collect())
                .map_err(map_err)
        })
        .await
    }

    async fn page_orgs(&self, request: &OrgPageRequest) -> Result<Vec<Organization>> {
        let request = request.clone();
        self.read(move |conn, _| {
            let after: i64 = match &request.after {
                None => 0,
                Some(id) => conn
                    .query_row("SELECT key FROM orgs WHERE id = ?", [id], |r| r.get(0))
                    .map_err(map_err)?,
            };
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ORG_COLUMNS} FROM orgs
                     WHERE NOT platform AND deleted_ms IS NULL
                       AND key > ?1
                       AND (?2 IS NULL OR external_id = ?2)
                     ORDER BY key LIMIT ?3"
                ))
                .map_err(map_err)?;
            stmt.query_map(
                params![after, request.external_id, request.limit as i64],
                org_from_row,
            )
            .and_then(|rows| rows.collect())
            .map_err(map_err)
        })
        .await
    }

    async fn update_org(&self, org: OrgKey, update: &OrgUpdate) -> Result<Organization> {
        let update = update.clone();
        self.writer
            .run(move |tx| {
                let current = tx
                    .query_row(
                        &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE key = ?"),
                        [org.get()],
                        org_from_row,
                    )
                    .map_err(map_err)?;
                let name = update.name.unwrap_or(current.name);
                let external_id = update.external_id.unwrap_or(current.external_id);
                tx.execute(
                    "UPDATE orgs SET name = ?, external_id = ? WHERE key = ?",
                    params![name, external_id, org.get()],
                )
                .map_err(|e| org_conflict(e, &name, external_id.as_deref()))?;
                Ok(Organization {
                    name,
                    external_id,
                    ..current
                })
            })
            .await
    }

    async fn delete_org(&self, org: OrgKey) -> Result<u64> {
        let now = now_millis();
        self.writer
            .run(move |tx| deletion::begin(tx, org, now))
            .await?;
        let mut removed = 0;
        loop {
            let n = self
                .writer
                .run(move |tx| deletion::remove_batch(tx, org))
                .await?;
            removed += n;
            if n == 0 {
                break;
            }
        }
        self.writer
            .run(move |tx| deletion::finish(tx, org, now))
            .await?;
        Ok(removed)
    }

    async fn unfinished_deletions(&self) -> Result<Vec<OrgKey>> {
        self.read(|conn, _| {
            let mut stmt = conn
                .prepare("SELECT key FROM orgs WHERE deleted_ms IS NOT NULL AND purged_ms IS NULL")
                .map_err(map_err)?;
            stmt.query_map([], |r| Ok(OrgKey::new(r.get(0)?)))
                .and_then(|rows| rows.collect())
                .map_err(map_err)
        })
        .await
    }

    async fn platform_org(&self) -> Result<Organization> {
        self.writer
            .run(move |tx| {
                let found = tx
                    .query_row(
                        &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE platform"),
                        [],
                        org_from_row,
                    )
                    .optional()
                    .map_err(map_err)?;
                if let Some(org) = found {
                    return Ok(org);
                }
                let name = stele_store::platform_org_name(|name| {
                    tx.query_row("SELECT 1 FROM orgs WHERE name = ?", [name], |_| Ok(()))
                        .optional()
                        .map(|taken| taken.is_some())
                        .map_err(map_err)
                })?;
                let new = NewOrganization {
                    name,
                    external_id: None,
                };
                insert_org(tx, new, true)
            })
            .await
    }

    async fn create_api_key(&self, org: OrgKey, key: NewApiKey) -> Result<ApiKeyInfo> {
        self.writer
            .run(move |tx| {
                let id = new_public_id("key");
                tx.execute(
                    "INSERT INTO api_keys (id, org_key, name, scopes, prefix, hash, created_ms)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    params![
                        id,
                        org.get(),
                        key.name,
                        Scope::join(&key.scopes),
                        key.prefix,
                        &key.hash.0[..],
                        now_millis()
                    ],
                )
                .map_err(map_err)?;
                tx.query_row(
                    &format!("SELECT {KEY_COLUMNS} FROM api_keys k JOIN orgs o ON o.key = k.org_key WHERE k.id = ?"),
                    [id],
                    key_from_row,
                )
                .map_err(map_err)
            })
            .await
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<RevokedKey> {
        let key_id = key_id.to_string();
        self.writer
            .run(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
                        params![now_millis(), key_id],
                    )
                    .map_err(map_err)?;
                let key = tx
                    .query_row(
                        &format!("SELECT {KEY_COLUMNS} FROM api_keys k JOIN orgs o ON o.key = k.org_key WHERE k.id = ?"),
                        [key_id],
                        key_from_row,
                    )
                    .map_err(map_err)?;
                Ok(RevokedKey {
                    key,
                    by_this_call: changed == 1,
                })
            })
            .await
    }

    async fn list_api_keys(&self, org: OrgKey) -> Result<Vec<ApiKeyInfo>> {
        self.read(move |conn, _| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k JOIN orgs o ON o.key = k.org_key
                     WHERE k.org_key = ? ORDER BY k.key"
                ))
                .map_err(map_err)?;
            stmt.query_map([org.get()], key_from_row)
                .and_then(|rows| rows.collect())
                .map_err(map_err)
        })
        .await
    }

    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<ApiKeyInfo>> {
        // Every request authenticates, and this is a point lookup of a few microseconds: it runs
        // right here on its own connection rather than paying for a hop to the blocking pool.
        // (A std Mutex: the critical section never awaits.) No cache, so a key revoked by
        // another process stops working at once.
        let conn = self.auth.lock().expect("auth connection");
        conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN orgs o ON o.key = k.org_key
             WHERE k.hash = ? AND k.revoked_ms IS NULL AND o.deleted_ms IS NULL"
        ))
        .and_then(|mut s| s.query_row([&hash.0[..]], key_from_row).optional())
        .map_err(map_err)
    }

    async fn settings(&self, org: OrgKey) -> Result<OrgSettings> {
        self.read(move |conn, _| retention::settings(conn, org))
            .await
    }

    async fn put_settings(&self, org: OrgKey, settings: &OrgSettings) -> Result<()> {
        let settings = settings.clone();
        self.writer
            .run(move |tx| retention::put_settings(tx, org, &settings, now_millis()))
            .await
    }
}

#[async_trait]
impl Trail for SqliteStore {
    async fn append(&self, org: OrgKey, request: AppendRequest) -> Result<AppendOutcome> {
        self.writer.append(org, request).await
    }

    async fn list(&self, org: OrgKey, page: &PageRequest) -> Result<Page> {
        let page = page.clone();
        self.read(move |conn, dict| {
            in_read_transaction(conn, |conn| read::list(conn, dict, org, &page))
        })
        .await
    }

    async fn list_rows(&self, org: OrgKey, page: &PageRequest) -> Result<RowPage> {
        let page = page.clone();
        self.read_bulk(move |conn, dict| {
            in_read_transaction(conn, |conn| read::list_rows(conn, dict, org, &page))
        })
        .await
    }

    async fn count(&self, org: OrgKey, filter: &EventFilter) -> Result<(u64, bool)> {
        let filter = filter.clone();
        self.read(move |conn, dict| {
            in_read_transaction(conn, |conn| read::count_matches(conn, dict, org, &filter))
        })
        .await
    }

    async fn get(&self, org: OrgKey, id: &str) -> Result<Option<Entry>> {
        let id = id.to_string();
        self.read(move |conn, dict| read::get(conn, dict, org, &id))
            .await
    }

    async fn correlated(
        &self,
        org: OrgKey,
        correlation_id: &str,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let correlation_id = correlation_id.to_string();
        self.read(move |conn, dict| {
            in_read_transaction(conn, |conn| {
                read::correlated(conn, dict, org, &correlation_id, limit)
            })
        })
        .await
    }

    async fn facets(&self, org: OrgKey) -> Result<Facets> {
        self.read(move |conn, _| read::facets(conn, org)).await
    }

    async fn erase_person(&self, org: OrgKey, erasure: Erasure) -> Result<ErasureOutcome> {
        let dict = self.dict.clone();
        let pseudonym = erasure.pseudonym.clone();
        let done = self
            .writer
            .run(move |tx| erasure::erase_person(tx, &dict, org, erasure, now_millis()))
            .await?;
        for (id, kind, value) in done.new_dict {
            self.dict.publish(id, kind, value);
        }
        Ok(ErasureOutcome {
            erased_entries: done.entries,
            pseudonym,
            cleanup: self.clean_up().await?,
            record: done.receipt,
        })
    }

    async fn redact(&self, org: OrgKey, redaction: Redaction) -> Result<RedactionOutcome> {
        let dict = self.dict.clone();
        let done = self
            .writer
            .run(move |tx| erasure::redact(tx, &dict, org, redaction, now_millis()))
            .await?;
        for (id, kind, value) in done.new_dict {
            self.dict.publish(id, kind, value);
        }
        Ok(RedactionOutcome {
            seq: done.seq.expect("a redaction names its entry"),
            cleanup: self.clean_up().await?,
            record: done.receipt,
        })
    }
}

impl SqliteStore {
    /// The search index's clean-up (once it has taken in the rewrites), then
    /// `erasure::clean_up` on the writer's connection, timed.
    async fn clean_up(&self) -> Result<Cleanup> {
        let started = std::time::Instant::now();
        self.search.compact().await?;
        self.writer
            .run_on_connection(|conn| erasure::clean_up(conn))
            .await?;
        Ok(Cleanup {
            finished_at: now_millis(),
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}

#[async_trait]
impl Integrity for SqliteStore {
    async fn checkpoints(&self, org: OrgKey, limit: usize) -> Result<Vec<SignedCheckpoint>> {
        let mut list = self
            .read(move |conn, _| integrity::checkpoints(conn, org, Some(limit)))
            .await?;
        list.reverse();
        Ok(list)
    }

    async fn checkpoint_key_ids(&self) -> Result<Vec<String>> {
        self.read(|conn, _| integrity::checkpoint_key_ids(conn))
            .await
    }

    async fn claim_signing_key(&self, key_id: &str) -> Result<String> {
        let key_id = key_id.to_string();
        self.writer
            .run(move |tx| {
                tx.execute(
                    "INSERT OR IGNORE INTO signing_key (only_row, key_id, claimed_ms)
                     VALUES (1, ?, ?)",
                    params![key_id, now_millis()],
                )
                .map_err(map_err)?;
                tx.query_row("SELECT key_id FROM signing_key", [], |r| r.get(0))
                    .map_err(map_err)
            })
            .await
    }

    async fn checkpoint_now(&self) -> Result<usize> {
        let Some(key) = self.options.signing_key.clone() else {
            return Ok(0);
        };
        let count = self
            .writer
            .run(move |tx| integrity::make_checkpoints(tx, &key, 0, true, now_millis()))
            .await?;
        stele_store::metrics::checkpoints_signed(count);
        Ok(count)
    }

    async fn shutdown(&self) -> Result<()> {
        self.checkpoint_now().await?;
        // The index takes in what it has not yet: a start that finds a backlog (under full
        // ingest the indexer runs a second or two behind) has every read check the backlog's
        // entries one by one until it catches up. Bounded, so that a stop fits in the few
        // seconds a container runtime gives it; what is left is taken in at the next start.
        let newest = self
            .writer
            .run_on_connection(|conn| search::newest_queued(conn))
            .await?;
        if !self.search.taken_in_by(newest, INDEX_AT_SHUTDOWN).await {
            tracing::warn!(
                left = newest - self.search.taken_in(),
                "the search index has entries left to take in; it takes them in at the next start"
            );
        }
        // And the queue rows it has taken in go now, not in the next start's first write (where
        // deleting a backlog's worth of rows filled the writer's page cache: an export just
        // after a restart peaked at about 100 MB instead of 35).
        let taken_in = self.search.taken_in();
        self.writer
            .run(move |tx| search::forget_taken_in(tx, taken_in))
            .await?;
        self.writer
            .run_on_connection(|conn| {
                conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                    .map_err(map_err)
            })
            .await
    }

    async fn checkpoint_at(&self, org: OrgKey, seq: Seq) -> Result<Option<SignedCheckpoint>> {
        self.read(move |conn, _| integrity::checkpoint_at(conn, org, seq))
            .await
    }

    async fn entry_hashes(&self, org: OrgKey, seqs: RangeInclusive<Seq>) -> Result<Vec<Hash>> {
        self.read(move |conn, _| integrity::entry_hashes(conn, org, seqs))
            .await
    }

    async fn entry_hashes_of(
        &self,
        org: OrgKey,
        spans: Vec<RangeInclusive<Seq>>,
    ) -> Result<Vec<Vec<Hash>>> {
        self.read(move |conn, _| {
            spans
                .into_iter()
                .map(|seqs| integrity::entry_hashes(conn, org, seqs))
                .collect()
        })
        .await
    }

    async fn stored_subtrees(&self, org: OrgKey, subtrees: Vec<Subtree>) -> Result<Vec<Hash>> {
        self.read(move |conn, _| subtrees::stored(conn, org, &subtrees))
            .await
    }

    async fn personal_digest(
        &self,
        org: OrgKey,
        seq: Seq,
    ) -> Result<Option<(Hash, stele_core::seal::Seal)>> {
        self.read(move |conn, _| integrity::personal_digest(conn, org, seq))
            .await
    }

    async fn verify_since(
        &self,
        org: OrgKey,
        key: Option<&PublicKey>,
        since: Option<VerifiedPoint>,
    ) -> Result<VerifyReport> {
        let key = key.copied();
        let readers = self.readers.clone();
        self.read(move |conn, dict| {
            // A second connection if one is idle once this one is held (taken before, several
            // verifications could hold every connection and wait for one another): each piece
            // is then read and checked in two halves side by side, one on each core.
            let mut second = readers.try_borrow();
            // Read by pieces, each on a snapshot of its own (`integrity::verify` says why).
            let helper = second.as_mut().map(|b| &mut b.conn);
            let report = integrity::verify(conn, helper, dict, org, key.as_ref(), since.clone())?;
            drop(second);
            if report.ok {
                return Ok(report);
            }
            // Pieces read at different moments can disagree where nothing is wrong (an erasure
            // committed between two of them rewrites entries its record, read at the start,
            // does not name): a failure counts only if one snapshot shows it too.
            in_read_transaction(conn, |conn| {
                integrity::verify(conn, None, dict, org, key.as_ref(), since)
            })
        })
        .await
    }

    async fn last_verified(&self, org: OrgKey) -> Result<Option<VerifiedPoint>> {
        self.read(move |conn, _| integrity::last_verified(conn, org))
            .await
    }

    async fn record_verified(&self, org: OrgKey, point: &VerifiedPoint) -> Result<()> {
        let point = point.clone();
        self.writer
            .run_on_connection(move |conn| {
                integrity::record_verified(conn, org, &point, now_millis())
            })
            .await
    }
}

#[async_trait]
impl Retention for SqliteStore {
    async fn expired_entries(
        &self,
        org: OrgKey,
        cutoffs: &Cutoffs,
        resume_after: i64,
        limit: usize,
    ) -> Result<ExpiredBatch> {
        let cutoffs = cutoffs.clone();
        self.read_bulk(move |conn, dict| {
            retention::expired_entries(conn, dict, org, &cutoffs, resume_after, limit)
        })
        .await
    }

    async fn prune_entries(
        &self,
        org: OrgKey,
        cutoffs: &Cutoffs,
        seqs: &[Seq],
    ) -> Result<RemovedPerChannel> {
        // Slice by slice (see `retention::PRUNE_SLICE`), so appends queued behind the writer are
        // committed between slices instead of waiting for the whole batch.
        let budget = self.options.prune_slice;
        let cutoffs = Arc::new(cutoffs.clone());
        let seqs: Arc<[Seq]> = seqs.into();
        let mut start = 0;
        let mut removed = RemovedPerChannel::new();
        while start < seqs.len() {
            let (cutoffs, all, dict) = (cutoffs.clone(), seqs.clone(), self.dict.clone());
            let done = self
                .writer
                .run(move |tx| {
                    retention::prune_entries(tx, &dict, org, &cutoffs, &all[start..], budget)
                })
                .await?;
            for (channel, n) in done.removed {
                *removed.entry(channel).or_default() += n;
            }
            start += done.consumed;
            if start < seqs.len() {
                tokio::time::sleep(retention::PRUNE_PAUSE).await;
            }
        }
        Ok(removed)
    }

    async fn claim_scheduled_run(&self, name: &str, due: Millis) -> Result<bool> {
        let name = name.to_string();
        self.writer
            .run(move |tx| retention::claim_scheduled_run(tx, &name, due))
            .await
    }
}

#[async_trait]
impl ExportJobs for SqliteStore {
    async fn create_export_job(&self, org: OrgKey, job: NewExportJob) -> Result<ExportJob> {
        let id = new_public_id("exp");
        self.writer
            .run(move |tx| export_jobs::create(tx, id, org, job))
            .await
    }

    async fn export_job(&self, org: OrgKey, id: &str) -> Result<Option<ExportJob>> {
        let id = id.to_string();
        self.read(move |conn, _| export_jobs::find(conn, org, &id))
            .await
    }

    async fn touch_export_job(&self, id: &str, now: Millis) -> Result<bool> {
        let id = id.to_string();
        self.writer
            .run(move |tx| export_jobs::touch(tx, &id, now))
            .await
    }

    async fn finish_export_job(&self, id: &str, outcome: ExportJobOutcome) -> Result<bool> {
        let id = id.to_string();
        self.writer
            .run(move |tx| export_jobs::finish(tx, &id, outcome))
            .await
    }

    async fn add_export_link(&self, id: &str, token_hash: [u8; 32], now: Millis) -> Result<()> {
        let id = id.to_string();
        self.writer
            .run(move |tx| export_jobs::add_link(tx, &id, token_hash, now))
            .await
    }

    async fn export_job_by_link(
        &self,
        id: &str,
        token_hash: [u8; 32],
    ) -> Result<Option<ExportJob>> {
        let id = id.to_string();
        self.read(move |conn, _| export_jobs::by_link(conn, &id, token_hash))
            .await
    }

    async fn sweep_export_jobs(&self, sweep: ExportSweep) -> Result<ExportSweepOutcome> {
        self.writer
            .run(move |tx| export_jobs::sweep(tx, sweep))
            .await
    }

    async fn live_export_job_ids(&self, now: Millis) -> Result<Vec<String>> {
        self.read(move |conn, _| export_jobs::live_ids(conn, now))
            .await
    }
}

#[async_trait]
impl Streams for SqliteStore {
    async fn create_stream(&self, org: OrgKey, new: NewStream) -> Result<Stream> {
        let id = new_public_id("str");
        self.writer
            .run(move |tx| streams::create(tx, id, org, new))
            .await
    }

    async fn streams(&self, org: OrgKey) -> Result<Vec<Stream>> {
        self.read(move |conn, _| streams::list(conn, org)).await
    }

    async fn stream(&self, org: OrgKey, id: &str) -> Result<Option<Stream>> {
        let id = id.to_string();
        self.read(move |conn, _| streams::find(conn, org, &id))
            .await
    }

    async fn change_stream(&self, org: OrgKey, id: &str, change: StreamChange) -> Result<Stream> {
        let id = id.to_string();
        self.writer
            .run(move |tx| streams::change(tx, org, &id, change))
            .await
    }

    async fn delete_stream(&self, org: OrgKey, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.writer
            .run(move |tx| streams::delete(tx, org, &id))
            .await
    }

    async fn claim_streams(&self, claim: StreamClaim) -> Result<Vec<Stream>> {
        self.writer.run(move |tx| streams::claim(tx, &claim)).await
    }

    async fn release_streams(&self, owner: &str) -> Result<()> {
        let owner = owner.to_string();
        self.writer
            .run(move |tx| streams::release(tx, &owner))
            .await
    }

    async fn record_delivery(
        &self,
        id: &str,
        owner: &str,
        revision: u64,
        report: DeliveryReport,
    ) -> Result<bool> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.writer
            .run_in_group(move |tx| streams::record_delivery(tx, &id, &owner, revision, report))
            .await
    }

    async fn entries_after(&self, org: OrgKey, after: Seq, limit: usize) -> Result<Vec<Entry>> {
        self.read(move |conn, dict| read::entries_after(conn, dict, org, after, limit))
            .await
    }

    async fn entries_after_each(
        &self,
        wants: Vec<(OrgKey, Seq, usize)>,
    ) -> Result<Vec<Vec<Entry>>> {
        self.read(move |conn, dict| {
            (wants.into_iter())
                .map(|(org, after, limit)| read::entries_after(conn, dict, org, after, limit))
                .collect()
        })
        .await
    }

    async fn head_seq(&self, org: OrgKey) -> Result<Seq> {
        self.read(move |conn, _| streams::head_seq(conn, org)).await
    }

    async fn stream_progress(&self, id: &str) -> Result<Vec<OrgProgress>> {
        let id = id.to_string();
        self.read(move |conn, _| streams::progress(conn, &id)).await
    }

    async fn stream_oldest_waiting(&self, id: &str) -> Result<Option<Millis>> {
        let id = id.to_string();
        self.read(move |conn, _| streams::oldest_waiting(conn, &id))
            .await
    }
}

#[async_trait]
impl RetracedViewer for SqliteStore {
    async fn create_saved_export(&self, org: OrgKey, export: SavedExport) -> Result<()> {
        self.writer
            .run(move |tx| retraced_viewer::create_saved_export(tx, org, export))
            .await
    }

    async fn saved_exports(&self, org: OrgKey, limit: usize) -> Result<Vec<SavedExport>> {
        self.read(move |conn, _| retraced_viewer::saved_exports(conn, org, limit))
            .await
    }

    async fn saved_export(&self, org: OrgKey, id: &str) -> Result<Option<SavedExport>> {
        let id = id.to_string();
        self.read(move |conn, _| retraced_viewer::find_saved_export(conn, org, &id))
            .await
    }

    async fn create_viewer_api_token(&self, org: OrgKey, token: NewViewerApiToken) -> Result<()> {
        self.writer
            .run(move |tx| retraced_viewer::create_token(tx, org, token))
            .await
    }

    async fn viewer_api_tokens(&self, org: OrgKey) -> Result<Vec<ViewerApiToken>> {
        self.read(move |conn, _| retraced_viewer::tokens(conn, org))
            .await
    }

    async fn rename_viewer_api_token(
        &self,
        org: OrgKey,
        id: &str,
        display_name: &str,
    ) -> Result<bool> {
        let (id, name) = (id.to_string(), display_name.to_string());
        self.writer
            .run(move |tx| retraced_viewer::rename_token(tx, org, &id, &name))
            .await
    }

    async fn delete_viewer_api_token(&self, org: OrgKey, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.writer
            .run(move |tx| retraced_viewer::delete_token(tx, org, &id))
            .await
    }
}

#[async_trait]
impl ActionSchemas for SqliteStore {
    async fn create_action_schema(
        &self,
        org: OrgKey,
        schema: NewActionSchema,
    ) -> Result<ActionSchema> {
        self.writer
            .run(move |tx| action_schemas::create(tx, org, schema))
            .await
    }

    async fn action_schemas(&self, org: OrgKey, action: &str) -> Result<Vec<ActionSchema>> {
        let action = action.to_string();
        self.read(move |conn, _| action_schemas::list(conn, org, &action))
            .await
    }

    async fn action_schema(
        &self,
        org: OrgKey,
        action: &str,
        version: Option<u32>,
    ) -> Result<Option<ActionSchema>> {
        let action = action.to_string();
        self.read(move |conn, _| action_schemas::find(conn, org, &action, version))
            .await
    }
}

#[async_trait]
impl Members for SqliteStore {
    async fn create_member(&self, org: OrgKey, member: NewMember) -> Result<Member> {
        let id = new_public_id("mem");
        self.writer
            .run(move |tx| members::create(tx, id, org, member))
            .await
    }

    async fn member(&self, org: OrgKey, id: &str) -> Result<Option<Member>> {
        let id = id.to_string();
        self.read(move |conn, _| members::find(conn, org, &id))
            .await
    }

    async fn memberships_by_email(&self, email: &str) -> Result<Vec<Member>> {
        let email = email.to_string();
        self.read(move |conn, _| members::by_email(conn, &email))
            .await
    }

    async fn list_members(&self, org: OrgKey) -> Result<Vec<Member>> {
        self.read(move |conn, _| members::list(conn, org)).await
    }

    async fn update_member(&self, org: OrgKey, id: &str, update: MemberUpdate) -> Result<Member> {
        let id = id.to_string();
        self.writer
            .run(move |tx| members::update(tx, org, &id, update))
            .await
    }

    async fn remove_member(&self, org: OrgKey, id: &str) -> Result<Member> {
        let id = id.to_string();
        self.writer
            .run(move |tx| members::remove(tx, org, &id))
            .await
    }

    async fn create_session(&self, session: NewSession) -> Result<()> {
        self.writer
            .run(move |tx| members::create_session(tx, session))
            .await
    }

    async fn switch_session(
        &self,
        token_hash: &SessionHash,
        member_id: &str,
        now: Millis,
    ) -> Result<Option<Session>> {
        let hash = *token_hash;
        let member_id = member_id.to_string();
        self.writer
            .run(move |tx| members::switch_session(tx, &hash, &member_id, now))
            .await
    }

    async fn session(&self, token_hash: &SessionHash, now: Millis) -> Result<Option<Session>> {
        let hash = *token_hash;
        self.read(move |conn, _| members::session(conn, &hash, now))
            .await
    }

    async fn touch_session(&self, token_hash: &SessionHash, now: Millis) -> Result<()> {
        let hash = *token_hash;
        self.writer
            .run(move |tx| members::touch_session(tx, &hash, now))
            .await
    }

    async fn revoke_session(&self, token_hash: &SessionHash, now: Millis) -> Result<bool> {
        let hash = *token_hash;
        self.writer
            .run(move |tx| members::revoke_session(tx, &hash, now))
            .await
    }

    async fn forget_sessions(&self, ended_before: Millis) -> Result<u64> {
        self.writer
            .run(move |tx| members::forget_sessions(tx, ended_before))
            .await
    }
}

#[async_trait]
impl PrintLog for SqliteStore {
    async fn record_print(
        &self,
        org: OrgKey,
        fields: PrintFields,
        audit: PrintAudit,
    ) -> Result<Print> {
        let dict = self.dict.clone();
        let written = self
            .writer
            .run(move |tx| print_log::record(tx, &dict, org, fields, &audit, now_millis()))
            .await?;
        Ok(self.published(written))
    }

    async fn print(&self, org: OrgKey, id: PrintId) -> Result<Option<Print>> {
        self.read(move |conn, _| print_log::find(conn, org, id))
            .await
    }

    async fn list_prints(
        &self,
        org: OrgKey,
        filter: &PrintFilter,
        limit: u32,
        offset: u64,
    ) -> Result<PrintPage> {
        let filter = filter.clone();
        self.read(move |conn, _| print_log::list(conn, org, &filter, limit, offset))
            .await
    }

    async fn print_stats(&self, org: OrgKey, filter: &PrintFilter) -> Result<PrintStats> {
        let filter = filter.clone();
        self.read(move |conn, _| print_log::stats(conn, org, &filter))
            .await
    }

    async fn classify_print(
        &self,
        org: OrgKey,
        id: PrintId,
        classification: Classification,
        audit: PrintAudit,
    ) -> Result<(Print, Print)> {
        let dict = self.dict.clone();
        let written = self
            .writer
            .run(move |tx| {
                print_log::classify(tx, &dict, org, id, classification, &audit, now_millis())
            })
            .await?;
        Ok(self.published(written))
    }

    async fn delete_print(&self, org: OrgKey, id: PrintId, audit: PrintAudit) -> Result<Print> {
        let dict = self.dict.clone();
        let written = self
            .writer
            .run(move |tx| print_log::delete(tx, &dict, org, id, &audit, now_millis()))
            .await?;
        Ok(self.published(written))
    }

    async fn clear_prints(&self, org: OrgKey, audit: PrintAudit) -> Result<u64> {
        let dict = self.dict.clone();
        let written = self
            .writer
            .run(move |tx| print_log::clear(tx, &dict, org, &audit, now_millis()))
            .await?;
        Ok(self.published(written))
    }
}

impl SqliteStore {
    /// Makes the dictionary values a committed print log change created known to the readers,
    /// and returns what the change did.
    fn published<T>(&self, written: print_log::Written<T>) -> T {
        for (id, kind, value) in written.new_dict {
            self.dict.publish(id, kind, value);
        }
        written.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mmap_size(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA mmap_size", [], |r| r.get(0))
            .unwrap()
    }

    /// `--sqlite-mmap-mib` reaches the interactive connections; the bulk scans never map.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_memory_map_is_what_the_options_say() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.read(|c, _| Ok(mmap_size(c))).await.unwrap(),
            DEFAULT_MMAP_BYTES.min(SQLITE_MMAP_LIMIT) as i64
        );
        drop(store);

        let options = SqliteOptions {
            mmap_bytes: 8 * 1024 * 1024,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open_with(&path, options).unwrap();
        assert_eq!(
            store.read(|c, _| Ok(mmap_size(c))).await.unwrap(),
            8 * 1024 * 1024
        );
        assert_eq!(mmap_size(&store.auth.lock().unwrap()), 8 * 1024 * 1024);
        assert_eq!(store.read_bulk(|c, _| Ok(mmap_size(c))).await.unwrap(), 0);
    }

    /// The heap figures `/metrics` shows count the page caches: a connection without a memory
    /// map that reads a table of a few MB holds its pages in its cache, and the figure says so.
    #[test]
    fn the_heap_figures_count_the_page_caches() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("pages.db")).unwrap();
        conn.execute_batch(
            "PRAGMA mmap_size = 0; PRAGMA cache_size = -16384;
             CREATE TABLE t (v BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO t SELECT randomblob(2000) FROM n;",
        )
        .unwrap();
        let reader = Connection::open(dir.path().join("pages.db")).unwrap();
        reader
            .execute_batch("PRAGMA mmap_size = 0; PRAGMA cache_size = -16384;")
            .unwrap();
        let total: i64 = reader
            .query_row("SELECT sum(length(v)) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(total, 4_000_000);
        // The reader's own cache (which other tests of this binary, running beside this one,
        // cannot move) holds the ~4 MB it read, and the process-wide figure counts it, but for
        // the first few pages of each cache, which SQLite allocates in one block of its own.
        let cached = memory::cache_used(&reader);
        assert!(cached > 3_000_000, "the reader caches {cached} bytes");
        let heap = memory::heap();
        assert!(
            heap.page_cache >= cached - 256 * 1024,
            "{heap:?}, the reader alone caching {cached}"
        );
        assert!(heap.used >= heap.page_cache, "{heap:?}");
        drop(reader);
    }
}
