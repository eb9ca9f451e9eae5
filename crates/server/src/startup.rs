//! Building and running the server: open the store, bootstrap the first organization on a fresh
//! data directory, bind the listener, serve until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use stele_core::checkpoint::PublicKey;
use stele_store::{Scope, Store};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::{integrity, keys, storage};

/// What the first start created: shown once, never again.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub org_id: String,
    pub org_name: String,
    pub admin_key: String,
}

pub struct Application {
    listener: TcpListener,
    store: Arc<dyn Store>,
    config: Config,
    bootstrap: Option<Bootstrap>,
    public_key: PublicKey,
    pseudonym_secret: [u8; 32],
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let signing_key = integrity::load_or_create_signing_key(&config.data_dir)?;
        let public_key = signing_key.public_key();
        let pseudonym_secret = integrity::pseudonym_secret(&signing_key);
        let store = storage::open(
            config.database_url.as_ref(),
            &config.data_dir,
            Some(signing_key),
            config.checkpoint_every,
        )
        .await?;
        let bootstrap = bootstrap(store.as_ref()).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        Ok(Application {
            listener,
            store,
            config,
            bootstrap,
            public_key,
            pseudonym_secret,
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
        let state = AppState {
            store: self.store,
            public_key: self.public_key,
            pseudonym_secret: Arc::new(self.pseudonym_secret),
        };
        let router = http::router(state, &self.config);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        // Every acknowledged entry is committed by now: seal the chain's end, tidy the storage.
        store
            .shutdown()
            .await
            .context("signing the final checkpoint")?;
        Ok(())
    }
}

/// On a data directory with no organization yet, creates one and an admin key for it.
async fn bootstrap(store: &dyn Store) -> anyhow::Result<Option<Bootstrap>> {
    if !store.list_orgs().await?.is_empty() {
        return Ok(None);
    }
    let org = store.create_org("default").await?;
    let key = keys::generate("first admin key", Scope::ALL.to_vec());
    store.create_api_key(org.key, key.record).await?;
    Ok(Some(Bootstrap {
        org_id: org.id,
        org_name: org.name,
        admin_key: key.secret,
    }))
}
