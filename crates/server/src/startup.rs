//! Building and running the server: open the store, bootstrap the first organization on a fresh
//! data directory, bind the listener, serve until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use stele_store::{Scope, Store};
use stele_store_sqlite::SqliteStore;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::keys;

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
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let path = config.database_path();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&path)
                .with_context(|| format!("opening the database at {}", path.display()))?,
        );
        let bootstrap = bootstrap(store.as_ref()).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        Ok(Application {
            listener,
            store,
            config,
            bootstrap,
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

    /// Serves until `shutdown` resolves, then finishes the requests in flight (and with them
    /// every commit they wait for) before returning.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = AppState { store: self.store };
        let router = http::router(state, &self.config);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")
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
