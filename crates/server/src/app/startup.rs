//! Building and running the server: open the store, check that the database's checkpoints are
//! signed with our key, bootstrap the first organization on a fresh database, bind the listener,
//! serve until a shutdown signal.
//!
//! Several processes may run this at once on one PostgreSQL database (docs/scaling.md): the
//! shared key file, the key check and the bootstrap are written so that they can.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use stele_core::checkpoint::PublicKey;
use stele_store::{Scope, Store, StoreError};
use tokio::net::TcpListener;

use crate::app::config::Config;
use crate::app::router;
use crate::app::serve;
use crate::app::state::{AppState, Shared};
use crate::console::state::ConsoleState;
use stele_service::access::api_keys;
use stele_service::access::org_policy::Policies;
use stele_service::action_schemas::SchemaCache;
use stele_service::export::jobs::ExportJobs;
use stele_service::integrity::{SharedWatchStatus, spawn_watch};
use stele_service::organizations::Directory;
use stele_service::random;
use stele_service::retention::SharedStatus;
use stele_service::retention::{archive_sink, schedule};
use stele_service::secrets;
use stele_service::secrets::TokenSigner;
use stele_service::streams::StreamSecrets;
use stele_service::streams::delivery::{self, DeliveryConfig};
use stele_service::streams::nats::Nats;
use stele_service::streams::target_guard::TargetGuard;
use stele_service::streams::tls::StreamTls;

use crate::app::backend;

/// What the first start created: shown once, never again.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub org_id: String,
    pub org_name: String,
    pub admin_key: String,
}

pub struct Application {
    listener: TcpListener,
    /// `/metrics`'s own listener, with `--metrics-listen`.
    metrics_listener: Option<TcpListener>,
    store: Arc<dyn Store>,
    config: Config,
    bootstrap: Option<Bootstrap>,
    public_key: PublicKey,
    pseudonym_secret: [u8; 32],
    console_secret: [u8; 32],
    viewer_secret: [u8; 32],
    password_link_secret: [u8; 32],
    streams_secret: [u8; 32],
    /// The certificates log streams' receivers must chain to (with `--streams-ca-file`'s).
    stream_tls: StreamTls,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        // Before the store opens: its writer records from its first group commit.
        crate::app::metrics::handle();
        if let Some(bad) = config
            .embed_origins
            .iter()
            .find(|o| !stele_service::settings::is_origin(o))
        {
            anyhow::bail!(
                "--embed-origins: `{bad}` is not an origin (scheme://host[:port], like https://app.example.com)"
            );
        }
        if let Some(nats) = &config.nats
            && !stele_service::streams::nats::is_subject_prefix(&nats.subject_prefix)
        {
            anyhow::bail!(
                "--nats-subject-prefix: `{}` is not a NATS subject prefix (tokens of letters, digits, `-` and `_`, separated by dots, like stele.audit)",
                nats.subject_prefix
            );
        }
        let stream_tls = match &config.streams_ca_file {
            None => StreamTls::default(),
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("--streams-ca-file: reading {}", path.display()))?;
                StreamTls::new(Some(&pem)).map_err(|problem| {
                    anyhow::anyhow!("--streams-ca-file: {}: {problem}", path.display())
                })?
            }
        };
        let key_path = config.signing_key_path();
        let loaded = secrets::load_or_create_signing_key(&key_path)?;
        let public_key = loaded.key.public_key();
        let pseudonym_secret = secrets::pseudonym_secret(&loaded.key);
        let console_secret = secrets::console_secret(&loaded.key);
        let viewer_secret = secrets::viewer_secret(&loaded.key);
        let password_link_secret = secrets::password_link_secret(&loaded.key);
        let streams_secret = secrets::streams_secret(&loaded.key);
        let store = backend::open(
            config.database_url.as_ref(),
            &config.data_dir,
            Some(loaded.key),
            backend::StoreTuning {
                checkpoint_every: config.checkpoint_every,
                sqlite_mmap_bytes: config.sqlite_mmap_bytes,
            },
        )
        .await?;
        // Before anything is signed: the store's upkeep signs its first checkpoints seconds after
        // opening, and returning an error here drops the store, which stops it.
        check_signing_key(store.as_ref(), &public_key, &key_path, loaded.created).await?;
        let bootstrap = bootstrap(store.as_ref()).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listening for /metrics on {addr}"))?,
            ),
            None => None,
        };
        Ok(Application {
            listener,
            metrics_listener,
            store,
            config,
            bootstrap,
            public_key,
            pseudonym_secret,
            console_secret,
            viewer_secret,
            password_link_secret,
            streams_secret,
            stream_tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr())
    }

    /// Where `/metrics` is served when it has a listener of its own (`--metrics-listen`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// The organization and admin key created on this start, if the data directory was new.
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.bootstrap.as_ref()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The key that verifies this server's checkpoints.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight (and with them
    /// every commit they wait for) before returning.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = self.store.clone();
        let retention = SharedStatus::default();
        let archive = archive_sink::sink(self.config.archive_dir.as_deref());
        let schedule = self.config.prune_at.map(|at| {
            tracing::info!(%at, "retention runs daily");
            tokio::spawn(schedule::run_daily_prune(
                store.clone(),
                self.config.clock.clone(),
                at,
                archive.clone(),
                retention.clone(),
            ))
        });
        // The chains are verified in the background: new entries every minute, everything on
        // the first pass and daily. What it finds shows in `/readyz`.
        let integrity = SharedWatchStatus::default();
        let watcher = if self.config.verify_every.new_entries.is_zero() {
            tracing::info!("background verification is off (--verify-every 0)");
            integrity.lock().expect("integrity watch status").off = true;
            None
        } else {
            Some(
                spawn_watch(
                    store.clone(),
                    self.public_key,
                    self.config.verify_every,
                    integrity.clone(),
                )
                .context("starting the background verification")?,
            )
        };
        let exports = ExportJobs::new(
            self.store.clone(),
            &self.config.data_dir,
            self.config.export_link_ttl,
            self.local_addr(),
        );
        // Sweeps at once too: jobs a previous run of this server left pending are declared
        // interrupted as soon as their heartbeat is stale.
        let sweeper = tokio::spawn(exports.clone().sweep_periodically());
        // An organization whose deletion was interrupted (a stopped server, a killed command) is
        // hidden already; its data goes now.
        let deleting = self.store.clone();
        tokio::spawn(async move {
            match stele_service::organizations::finish_deletions(deleting.as_ref()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(organizations = n, "finished interrupted deletions"),
                Err(error) => tracing::warn!(%error, "finishing interrupted deletions failed"),
            }
        });
        // Log streams: this process delivers the streams whose leases it holds.
        let stream_secrets = Arc::new(StreamSecrets::new(self.streams_secret));
        let stream_guard = TargetGuard {
            allow_private: self.config.streams_allow_private_targets,
            nats: self.config.nats.is_some(),
        };
        if stream_guard.allow_private {
            tracing::warn!(
                "log streams may reach loopback, private and link-local addresses \
                 (--streams-allow-private-targets)"
            );
        }
        let owner = format!(
            "{}/{}",
            self.local_addr(),
            hex::encode(random::bytes::<6>())
        );
        let deliveries = delivery::spawn(
            store.clone(),
            DeliveryConfig {
                // One server serves an embedded database.
                sole_server: self.config.database_url.is_none(),
                nats: self
                    .config
                    .nats
                    .clone()
                    .map(|settings| Arc::new(Nats::new(settings))),
                tls: self.stream_tls.clone(),
                max_backoff: self.config.streams_max_backoff,
                ..DeliveryConfig::new(
                    owner,
                    stream_guard,
                    (*stream_secrets).clone(),
                    self.config.clock.clone(),
                )
            },
        );
        let public_url = match self.config.public_url.as_deref() {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => self.url(),
        };
        let state = AppState::new(Shared {
            store: self.store,
            public_key: self.public_key,
            pseudonym_secret: Arc::new(self.pseudonym_secret),
            retention,
            integrity,
            archive,
            clock: self.config.clock.clone(),
            exports: exports.clone(),
            console: Arc::new(ConsoleState::new(self.console_secret, &self.config)),
            proxies: Arc::new(self.config.trusted_proxies.clone()),
            policies: Arc::new(Policies::new(
                store.clone(),
                self.config.clock.clone(),
                self.config.settings_cache_ttl,
            )),
            directory: Arc::new(Directory::new()),
            action_schemas: Arc::new(SchemaCache::new(
                self.config.clock.clone(),
                self.config.settings_cache_ttl,
            )),
            max_event_bytes: self.config.max_event_bytes,
            auto_create_organizations: self.config.auto_create_organizations,
            viewer_tokens: Arc::new(TokenSigner::new(self.viewer_secret)),
            password_links: Arc::new(TokenSigner::new(self.password_link_secret)),
            public_url: public_url.into(),
            embed_origins: self.config.embed_origins.clone().into(),
            stream_secrets,
            stream_guard,
        });
        let router = router::router(state, &self.config);
        // With the connection limits, and the peer's address in each request (the client address,
        // `client_ip::client_ip`, starts from it).
        let limits = serve::Limits {
            header_timeout: self.config.header_timeout,
            idle_timeout: self.config.idle_timeout,
            request_timeout: self.config.request_timeout,
            max_connections: self.config.max_connections,
        };
        // Scrapes hold no request of the API's: this listener stops when the API's has drained.
        let metrics_served = self.metrics_listener.map(|listener| {
            tokio::spawn(serve::serve(
                listener,
                router::metrics_router(),
                limits,
                std::future::pending(),
            ))
        });
        let served = serve::serve(self.listener, router, limits, shutdown)
            .await
            .context("serving HTTP");
        if let Some(metrics_served) = metrics_served {
            metrics_served.abort();
        }
        if let Some(schedule) = schedule {
            schedule.abort();
        }
        drop(watcher);
        // Deliveries in flight finish their attempt; this process's leases are given up.
        deliveries.shutdown().await;
        // Running export jobs stop (as failed, their files removed) before the store closes.
        exports.shutdown().await;
        let _ = sweeper.await;
        served?;
        // Every acknowledged entry is committed by now: seal the chain's end, tidy the storage.
        store
            .shutdown()
            .await
            .context("signing the final checkpoint")?;
        Ok(())
    }
}

/// Refuses to serve a database whose checkpoints another key signed. Stele verifies a chain with
/// one key, so a server signing with a second one would make `stele verify` fail for everyone;
/// this happens when servers sharing a database do not share the key file, or when the key file
/// was lost or replaced.
async fn check_signing_key(
    store: &dyn Store,
    ours: &PublicKey,
    key_path: &Path,
    created: bool,
) -> anyhow::Result<()> {
    let ours = ours.key_id();
    let mut foreign: Vec<String> = store
        .checkpoint_key_ids()
        .await
        .context("reading which key signed the database's checkpoints")?
        .into_iter()
        .filter(|id| !id.eq_ignore_ascii_case(&ours))
        .collect();
    if foreign.is_empty() {
        // No checkpoint says otherwise: claim the database for our key, or learn which key
        // claimed it first (a server that started at the same moment with another key).
        let claimed = store
            .claim_signing_key(&ours)
            .await
            .context("recording which key signs this database's checkpoints")?;
        if claimed.eq_ignore_ascii_case(&ours) {
            return Ok(());
        }
        foreign.push(claimed);
    }
    let created = if created {
        " (the file did not exist, so this start created a new key there)"
    } else {
        ""
    };
    anyhow::bail!(
        "this database's checkpoints are signed with key id {} (or it is claimed by that key), but \
         the signing key in {} has key \
         id {ours}{created}. Every server sharing a database must use the same signing key: copy \
         the key file of the server that signed them to {}, or point --signing-key-file \
         (STELE_SIGNING_KEY_FILE) at it. Refusing to start, because checkpoints signed with a \
         second key would make `stele verify` fail.",
        foreign.join(" and "),
        key_path.display(),
        key_path.display(),
    )
}

/// On a database with no organization yet, creates one and an admin key for it.
///
/// Several servers may start at once on one new database: all of them see no organization, one
/// creates `default`, and the others' inserts conflict on its unique name. Those then know another
/// process bootstrapped (and prints the key), and print nothing.
async fn bootstrap(store: &dyn Store) -> anyhow::Result<Option<Bootstrap>> {
    if !store.list_orgs().await?.is_empty() {
        return Ok(None);
    }
    let org = match store.create_org("default").await {
        Ok(org) => org,
        Err(StoreError::Conflict(_)) => {
            tracing::info!("another server sharing this database created the first organization");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let key = api_keys::generate("first admin key", Scope::FOR_ORGANIZATION.to_vec());
    store.create_api_key(org.key, key.record).await?;
    Ok(Some(Bootstrap {
        org_id: org.id,
        org_name: org.name,
        admin_key: key.secret,
    }))
}
