//! The HTTP layer: one router, one error type, one authentication extractor, and a module per
//! API resource with handlers named by verb. The web console (`crate::console`) is merged into
//! the same router.

pub(crate) mod api;
mod auth;
pub(crate) mod error;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use stele_core::checkpoint::PublicKey;
use stele_store::Store;

use crate::config::Config;
use crate::console::{self, ConsoleState};
use crate::net::TrustedProxies;
use stele_service::access::org_policy::Policies;
use stele_service::clock::SharedClock;
use stele_service::export::jobs::ExportJobs;
use stele_service::retention::{ArchiveSink, SharedStatus};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Verifies this server's checkpoints.
    pub public_key: PublicKey,
    /// Keys the pseudonyms that erasure gives people (`stele_core::chain::pseudonym`).
    pub pseudonym_secret: Arc<[u8; 32]>,
    /// The last retention run, for `/readyz`.
    pub retention: SharedStatus,
    /// The archive directory retention writes to, if any (an erasure reaches it too).
    pub archive: Option<Arc<dyn ArchiveSink>>,
    pub clock: SharedClock,
    /// Runs export jobs and serves their files.
    pub exports: Arc<ExportJobs>,
    /// The console's secret, cookie settings and sign-in rate limits.
    pub console: Arc<ConsoleState>,
    /// Which peers may say who the client is (`crate::net::client_ip`).
    pub proxies: Arc<TrustedProxies>,
    /// Each organization's settings as requests obey them: recording on or off, the IP allowlist.
    pub policies: Arc<Policies>,
}

pub fn router(state: AppState, config: &Config) -> Router {
    Router::new()
        .route(
            "/v1/events",
            get(api::events::list).post(api::events::create),
        )
        .route("/v1/events/{id}", get(api::events::show))
        .route("/v1/events/{id}/proof", get(api::integrity::inclusion))
        .route(
            "/v1/entities/{entity_type}/{entity_id}/events",
            get(api::entities::history),
        )
        .route("/v1/facets", get(api::facets::show))
        .route("/v1/export", get(api::export::download))
        .route("/v1/exports", post(api::export_jobs::create))
        .route("/v1/exports/{id}", get(api::export_jobs::show))
        .route("/v1/exports/{id}/download", get(api::export_jobs::download))
        .route("/v1/integrity/verify", get(api::integrity::verify))
        .route(
            "/v1/integrity/checkpoints",
            get(api::integrity::checkpoints),
        )
        .route("/v1/integrity/public-key", get(api::integrity::public_key))
        .route(
            "/v1/integrity/consistency",
            get(api::integrity::consistency),
        )
        .route("/v1/erasure", post(api::erasure::create))
        .route(
            "/v1/settings",
            get(api::settings::show).put(api::settings::update),
        )
        // The print log speaks Bambuddy's paths, which clients write with or without the
        // trailing slash.
        .route(
            "/api/v1/print-log",
            get(api::print_log::list)
                .post(api::print_log::create)
                .delete(api::print_log::clear),
        )
        .route(
            "/api/v1/print-log/",
            get(api::print_log::list)
                .post(api::print_log::create)
                .delete(api::print_log::clear),
        )
        .route("/api/v1/print-log/stats", get(api::print_log::stats))
        .route("/api/v1/print-log/stats/", get(api::print_log::stats))
        .route(
            "/api/v1/print-log/{id}",
            patch(api::print_log::update).delete(api::print_log::delete),
        )
        .route(
            "/api/v1/print-log/{id}/",
            patch(api::print_log::update).delete(api::print_log::delete),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(api::health::ready))
        .merge(console::router(state.clone()))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}
