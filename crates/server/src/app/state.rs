//! What every request handler shares: the store, the server's secrets and services, and the
//! caches requests obey. Built once by `startup`; the API and the console take it as axum state.

use std::ops::Deref;
use std::sync::Arc;

use stele_core::checkpoint::PublicKey;
use stele_service::access::org_policy::Policies;
use stele_service::action_schemas::SchemaCache;
use stele_service::clock::SharedClock;
use stele_service::export::jobs::ExportJobs;
use stele_service::integrity::SharedWatchStatus;
use stele_service::organizations::Directory;
use stele_service::retention::{ArchiveSink, SharedStatus};
use stele_service::secrets::TokenSigner;
use stele_service::streams::StreamSecrets;
use stele_service::streams::target_guard::TargetGuard;
use stele_store::Store;

use crate::app::client_ip::TrustedProxies;
use crate::console::state::ConsoleState;

/// [`Shared`], behind one `Arc`: axum clones the state for every extractor of every request, and
/// cloning (then dropping) each of `Shared`'s fields was about 3% of the server's CPU under
/// single-event ingest (docs/benchmarks.md).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Arc<dyn Store>,
    /// Verifies this server's checkpoints.
    pub public_key: PublicKey,
    /// Keys the pseudonyms that erasure gives people (`stele_core::chain::pseudonym`).
    pub pseudonym_secret: Arc<[u8; 32]>,
    /// The last retention run, for `/readyz`.
    pub retention: SharedStatus,
    /// What the background verification of the chains last found, for `/readyz`.
    pub integrity: SharedWatchStatus,
    /// The archive directory retention writes to, if any (an erasure reaches it too).
    pub archive: Option<Arc<dyn ArchiveSink>>,
    pub clock: SharedClock,
    /// Runs export jobs and serves their files.
    pub exports: Arc<ExportJobs>,
    /// The console's secret, cookie settings and sign-in rate limits.
    pub console: Arc<ConsoleState>,
    /// Which peers may say who the client is (`crate::app::client_ip`).
    pub proxies: Arc<TrustedProxies>,
    /// Each organization's settings as requests obey them: recording on or off, the IP allowlist.
    pub policies: Arc<Policies>,
    /// The organizations requests name (by id or external id), and the platform's own.
    pub directory: Arc<Directory>,
    /// The platform's action schemas (WorkOS's), as events are checked against them.
    pub action_schemas: Arc<SchemaCache>,
    /// The largest event any ingest door accepts, in bytes of its JSON (`Config`).
    pub max_event_bytes: usize,
    /// Whether naming an unknown organization on ingest creates it (`Config`).
    pub auto_create_organizations: bool,
    /// Signs and checks viewer tokens (`stele_service::access::viewer`).
    pub viewer_tokens: Arc<TokenSigner>,
    /// Signs and checks one-time password-set links (`stele_service::access::members`).
    pub password_links: Arc<TokenSigner>,
    /// Where this server is reached, without a trailing slash (`Config::public_url`, or the
    /// listen address).
    pub public_url: Arc<str>,
    /// The origins that may frame the embedded audit log (`Config::embed_origins`).
    pub embed_origins: Arc<[String]>,
    /// Derives the log streams' webhook secrets (`stele_service::streams`).
    pub stream_secrets: Arc<StreamSecrets>,
    /// Which addresses log streams may reach (`Config::streams_allow_private_targets`).
    pub stream_guard: TargetGuard,
}
