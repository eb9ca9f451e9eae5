//! Connections: a tiny pool of our own, and a per-connection cache of prepared statements.
//!
//! Why not a pool crate: the store needs only "borrow an open connection, give it back, drop it if
//! it broke", and owning that keeps the dependency list short. Each borrow is bounded by a
//! semaphore; an idle connection that the server closed (restart, `pg_terminate_backend`) is
//! thrown away and a new one is opened on demand, so the store recovers by itself when the
//! database comes back.
//!
//! Why a statement cache: `tokio-postgres` prepares an unnamed statement for every textual query,
//! one extra round trip each time. Caching the prepared statement per connection (keyed by its
//! SQL text) saves it. The list queries are built from the filters that are present, so their
//! texts vary, but the number of combinations is small; the cache is still bounded.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stele_store::StoreError;
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement, Transaction};

use crate::error::{Error, R, describe};

/// Prepared statements kept per connection before the cache starts over.
const STATEMENT_CACHE: usize = 256;
/// How long reaching the server's port may take, unless the URL sets `connect_timeout`. The
/// driver applies it to the TCP connect alone; [`connect`] bounds the whole handshake to twice it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long data sent on an open connection may stay unacknowledged by the peer's TCP stack
/// before the connection is given up (Linux `TCP_USER_TIMEOUT`), unless the URL sets
/// `tcp_user_timeout`. Without it a query sent to a host that vanished (network cut, machine off)
/// waits for the kernel's retransmissions, about 15 minutes. A slow but running server still
/// acknowledges at the TCP level, so this never cuts off a long query.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a request waits for one of the pool's connections before it is answered
/// "unavailable". Connections are normally free again within milliseconds; this bounds the wait
/// when every one of them is stuck connecting to a database that does not answer.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(15);

pub type Param<'a> = &'a (dyn ToSql + Sync);

/// Opens one connection and drives it on the runtime; `setup` runs once on it (session settings).
///
/// The whole handshake (TCP connect, startup, authentication, `setup`) is bounded: the driver's
/// `connect_timeout` covers the TCP connect only, and a server that accepts the connection but
/// never answers (a stuck proxy, a host under a storm) would otherwise hold the caller forever.
pub async fn connect(config: &Config, setup: &str) -> R<Conn> {
    connect_on(config, setup, &Handle::current()).await
}

/// [`connect`], with the connection driven by a task of `runtime`, whichever runtime the caller
/// is on.
async fn connect_on(config: &Config, setup: &str, runtime: &Handle) -> R<Conn> {
    let limit = 2 * config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    match tokio::time::timeout(limit, open(config, setup, runtime)).await {
        Ok(conn) => conn,
        Err(_) => Err(Error::Store(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL: no answer within {} s",
            limit.as_secs()
        )))),
    }
}

async fn open(config: &Config, setup: &str, runtime: &Handle) -> R<Conn> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        Error::Store(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL: {}",
            describe(&e)
        )))
    })?;
    runtime.spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %describe(&error), "PostgreSQL connection ended");
        }
    });
    if !setup.is_empty() {
        client.batch_execute(setup).await?;
    }
    Ok(Conn {
        client,
        statements: StatementCache::default(),
    })
}

/// The settings every store connection starts from.
pub fn base_config(url: &str) -> R<Config> {
    let mut config: Config = url.parse().map_err(|e| {
        crate::error::other(format!(
            "not a PostgreSQL URL ({}): {e}",
            crate::error::redact_url(url)
        ))
    })?;
    if config.get_application_name().is_none() {
        config.application_name("stele");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    Ok(config)
}

#[derive(Default)]
pub struct StatementCache {
    map: HashMap<String, Statement>,
}

impl StatementCache {
    async fn get(
        &mut self,
        client: &impl tokio_postgres::GenericClient,
        sql: &str,
    ) -> R<Statement> {
        if let Some(s) = self.map.get(sql) {
            return Ok(s.clone());
        }
        let statement = client.prepare(sql).await?;
        if self.map.len() >= STATEMENT_CACHE {
            self.map.clear();
        }
        self.map.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// One open connection with its statement cache.
pub struct Conn {
    pub client: Client,
    statements: StatementCache,
}

impl Conn {
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    pub async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> R<Vec<Row>> {
        let statement = self.statements.get(&self.client, sql).await?;
        Ok(self.client.query(&statement, params).await?)
    }

    pub async fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> R<Option<Row>> {
        let statement = self.statements.get(&self.client, sql).await?;
        Ok(self.client.query_opt(&statement, params).await?)
    }

    /// Starts a transaction; dropping the returned [`Tx`] without committing rolls it back.
    pub async fn transaction(&mut self) -> R<Tx<'_>> {
        let tx = self.client.transaction().await?;
        Ok(Tx {
            tx,
            statements: &mut self.statements,
        })
    }

    /// A read-only transaction on one snapshot (`REPEATABLE READ`), for reads that take several
    /// statements and must see one state of the database (verification).
    pub async fn snapshot(&mut self) -> R<Tx<'_>> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        Ok(Tx {
            tx,
            statements: &mut self.statements,
        })
    }
}

/// An open transaction on a [`Conn`], sharing its statement cache.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut StatementCache,
}

impl Tx<'_> {
    pub async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> R<Vec<Row>> {
        let statement = self.statements.get(&self.tx, sql).await?;
        Ok(self.tx.query(&statement, params).await?)
    }

    pub async fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> R<Option<Row>> {
        let statement = self.statements.get(&self.tx, sql).await?;
        Ok(self.tx.query_opt(&statement, params).await?)
    }

    pub async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> R<u64> {
        let statement = self.statements.get(&self.tx, sql).await?;
        Ok(self.tx.execute(&statement, params).await?)
    }

    /// Starts `COPY … FROM STDIN` inside the transaction.
    pub async fn copy_in(&mut self, sql: &str) -> R<tokio_postgres::CopyInSink<bytes::Bytes>> {
        let statement = self.statements.get(&self.tx, sql).await?;
        Ok(self.tx.copy_in(&statement).await?)
    }

    /// Binds `sql` to `params` as a portal, whose rows [`Tx::query_portal`] fetches in chunks.
    pub async fn bind(&mut self, sql: &str, params: &[Param<'_>]) -> R<tokio_postgres::Portal> {
        let statement = self.statements.get(&self.tx, sql).await?;
        Ok(self.tx.bind(&statement, params).await?)
    }

    /// Up to `max_rows` more rows of a portal.
    pub async fn query_portal(
        &mut self,
        portal: &tokio_postgres::Portal,
        max_rows: i32,
    ) -> R<Vec<Row>> {
        Ok(self.tx.query_portal(portal, max_rows).await?)
    }

    /// Runs statements given as text, without parameters (DDL).
    pub async fn batch_execute(&mut self, sql: &str) -> R<()> {
        Ok(self.tx.batch_execute(sql).await?)
    }

    pub async fn commit(self) -> R<()> {
        Ok(self.tx.commit().await?)
    }
}

/// A bounded set of connections for reads and the occasional write that does not go through the
/// group-commit writer (organizations, keys, checkpoints, erasure).
pub struct Pool {
    /// What the pool is for, the `pool` label of its gauges (`reads`, `lookups`).
    name: &'static str,
    config: Config,
    setup: String,
    /// The runtime the pool was made on, which drives every connection it opens: a borrower on
    /// another runtime (the background verification, at a low priority on a thread of its own)
    /// must not leave a connection that the requests use next driven by its thread.
    runtime: Handle,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

impl Pool {
    /// Must be called on the runtime that is to drive the connections (see `runtime`).
    pub fn new(name: &'static str, config: Config, setup: &str, size: usize) -> Arc<Pool> {
        metrics::gauge!(stele_store::metrics::POOL_SIZE, "pool" => name).set(size as f64);
        Arc::new(Pool {
            name,
            config,
            setup: setup.to_string(),
            runtime: Handle::current(),
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size),
        })
    }

    /// Puts an already open connection into the pool (the one migrations ran on).
    pub fn give(&self, conn: Conn) {
        if !conn.is_closed() {
            self.idle.lock().expect("pool lock").push(conn);
        }
    }

    pub async fn get(&self) -> R<Pooled<'_>> {
        let permit = match tokio::time::timeout(POOL_WAIT_TIMEOUT, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                return Err(Error::Store(StoreError::Unavailable(
                    "the connection pool is closed".into(),
                )));
            }
            Err(_) => {
                return Err(Error::Store(StoreError::Unavailable(format!(
                    "no PostgreSQL connection became free within {} s",
                    POOL_WAIT_TIMEOUT.as_secs()
                ))));
            }
        };
        // Lent from here until the `Pooled` drops (a failed connect below included).
        let lent = Lent::new(self.name);
        loop {
            let conn = self.idle.lock().expect("pool lock").pop();
            match conn {
                Some(conn) if conn.is_closed() => continue,
                Some(conn) => {
                    return Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                        _permit: permit,
                        _lent: lent,
                    });
                }
                None => break,
            }
        }
        let conn = connect_on(&self.config, &self.setup, &self.runtime).await?;
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
            _permit: permit,
            _lent: lent,
        })
    }
}

/// One connection lent, on its pool's gauge (`stele_postgres_pool_in_use`) while it lives.
struct Lent(&'static str);

impl Lent {
    fn new(pool: &'static str) -> Lent {
        metrics::gauge!(stele_store::metrics::POOL_IN_USE, "pool" => pool).increment(1.0);
        Lent(pool)
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        metrics::gauge!(stele_store::metrics::POOL_IN_USE, "pool" => self.0).decrement(1.0);
    }
}

/// A borrowed connection; it goes back to the pool when dropped, unless it broke.
pub struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
    _permit: SemaphorePermit<'p>,
    _lent: Lent,
}

impl Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give(conn);
        }
    }
}
