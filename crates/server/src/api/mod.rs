//! The HTTP API: the v1 routes and the Bambuddy-compatible print log, one module per resource
//! with handlers named by verb, one error type ([`error`]) and one authentication extractor
//! ([`auth`]). Handlers parse the request, call the use case in `stele_service` and shape the
//! answer; the rules live in the service.

pub(crate) mod auth;
pub mod entities;
pub mod erasure;
pub(crate) mod error;
pub mod events;
pub mod export;
pub mod export_jobs;
pub mod facets;
pub mod health;
pub mod integrity;
pub mod organizations;
pub mod parameters;
pub mod print_log;
pub mod redaction;
pub mod settings;
pub mod viewer_tokens;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::{delete, get, patch, post};
use serde::Serialize;
use stele_core::Entry;
use stele_core::params::PageRequest;
use stele_store::Page;

use crate::app::state::AppState;
use error::{ApiError, Result};

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint")
}

/// Query parameters as pairs, with an unreadable query string answered as a 400.
pub type Params = std::result::Result<Query<Vec<(String, String)>>, QueryRejection>;

pub fn page_request(params: &[(String, String)]) -> Result<PageRequest> {
    Ok(PageRequest::from_params(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

pub fn params(params: Params) -> Result<Vec<(String, String)>> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// A page of entries as the list endpoints answer it, serialized straight from the entries.
#[derive(Serialize)]
pub struct PageBody {
    entries: Vec<Entry>,
    next_cursor: Option<String>,
    prev_cursor: Option<String>,
    total: u64,
    total_exact: bool,
}

impl From<Page> for PageBody {
    fn from(page: Page) -> PageBody {
        PageBody {
            entries: page.entries,
            next_cursor: page.next_cursor.map(|c| c.to_string()),
            prev_cursor: page.prev_cursor.map(|c| c.to_string()),
            total: page.total,
            total_exact: page.total_exact,
        }
    }
}
/// Every API route; the application router merges it with the console's.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(events::list).post(events::create))
        .route("/v1/events/{id}", get(events::show))
        .route("/v1/events/{id}/proof", get(integrity::inclusion))
        .route(
            "/v1/entities/{entity_type}/{entity_id}/events",
            get(entities::history),
        )
        .route("/v1/facets", get(facets::show))
        .route("/v1/export", get(export::download))
        .route("/v1/exports", post(export_jobs::create))
        .route("/v1/exports/{id}", get(export_jobs::show))
        .route("/v1/exports/{id}/download", get(export_jobs::download))
        .route("/v1/integrity/verify", get(integrity::verify))
        .route("/v1/integrity/checkpoints", get(integrity::checkpoints))
        .route("/v1/integrity/public-key", get(integrity::public_key))
        .route("/v1/integrity/consistency", get(integrity::consistency))
        .route("/v1/erasure", post(erasure::create))
        .route("/v1/events/{id}/redactions", post(erasure::redact))
        .route("/v1/viewer-tokens", post(viewer_tokens::create))
        .route(
            "/v1/organizations",
            get(organizations::list).post(organizations::create),
        )
        .route(
            "/v1/organizations/{org}",
            get(organizations::show)
                .patch(organizations::update)
                .delete(organizations::delete),
        )
        .route(
            "/v1/organizations/{org}/keys",
            get(organizations::list_keys).post(organizations::create_key),
        )
        .route(
            "/v1/organizations/{org}/keys/{key_id}",
            delete(organizations::revoke_key),
        )
        .route(
            "/v1/organizations/{org}/members",
            get(organizations::list_members).post(organizations::add_member),
        )
        .route(
            "/v1/organizations/{org}/members/{id}",
            patch(organizations::update_member).delete(organizations::remove_member),
        )
        .route(
            "/v1/organizations/{org}/members/{id}/password-link",
            post(organizations::member_password_link),
        )
        .route("/v1/redaction/test", post(redaction::test))
        .route(
            "/v1/settings",
            get(settings::show)
                .put(settings::replace)
                .patch(settings::patch),
        )
        // The print log speaks Bambuddy's paths, which clients write with or without the
        // trailing slash.
        .route(
            "/api/v1/print-log",
            get(print_log::list)
                .post(print_log::create)
                .delete(print_log::clear),
        )
        .route(
            "/api/v1/print-log/",
            get(print_log::list)
                .post(print_log::create)
                .delete(print_log::clear),
        )
        .route("/api/v1/print-log/stats", get(print_log::stats))
        .route("/api/v1/print-log/stats/", get(print_log::stats))
        .route(
            "/api/v1/print-log/{id}",
            patch(print_log::update).delete(print_log::delete),
        )
        .route(
            "/api/v1/print-log/{id}/",
            patch(print_log::update).delete(print_log::delete),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(health::ready))
        // After every route: a layer added with `route_layer` covers the routes before it.
        .route_layer(axum::middleware::from_fn(parameters::reject_unknown))
}
