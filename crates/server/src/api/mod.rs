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
pub mod openapi;
pub mod organizations;
pub mod parameters;
pub mod print_log;
pub mod redaction;
pub mod settings;
pub mod streams;
pub mod viewer_tokens;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::{get, patch};
use serde::Serialize;
use stele_core::Entry;
use stele_core::params::PageRequest;
use stele_store::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    let (documented, _) = documented().split_for_parts();
    documented
        // The print log speaks Bambuddy's paths, which its clients write with or without the
        // trailing slash: the other spelling of each documented path, served alike.
        .route(
            "/api/v1/print-log",
            get(print_log::list)
                .post(print_log::create)
                .delete(print_log::clear),
        )
        .route("/api/v1/print-log/stats/", get(print_log::stats))
        .route(
            "/api/v1/print-log/{id}/",
            patch(print_log::update).delete(print_log::delete),
        )
        // After every route: a layer added with `route_layer` covers the routes before it.
        .route_layer(axum::middleware::from_fn(parameters::reject_unknown))
}

/// The API's routes, each registered from its handler's `#[utoipa::path]` attribute, which
/// gives the router its path and method and the OpenAPI document ([`openapi`]) its description.
pub fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events::list, events::create))
        .routes(routes!(events::show))
        .routes(routes!(integrity::inclusion))
        .routes(routes!(entities::history))
        .routes(routes!(facets::show))
        .routes(routes!(export::download))
        .routes(routes!(export_jobs::create))
        .routes(routes!(export_jobs::show))
        .routes(routes!(export_jobs::download))
        .routes(routes!(integrity::verify))
        .routes(routes!(integrity::checkpoints))
        .routes(routes!(integrity::public_key))
        .routes(routes!(integrity::consistency))
        .routes(routes!(erasure::create))
        .routes(routes!(erasure::redact))
        .routes(routes!(viewer_tokens::create))
        .routes(routes!(organizations::list, organizations::create))
        .routes(routes!(
            organizations::show,
            organizations::update,
            organizations::delete
        ))
        .routes(routes!(organizations::list_keys, organizations::create_key))
        .routes(routes!(organizations::revoke_key))
        .routes(routes!(
            organizations::list_members,
            organizations::add_member
        ))
        .routes(routes!(
            organizations::update_member,
            organizations::remove_member
        ))
        .routes(routes!(organizations::member_password_link))
        .routes(routes!(redaction::test))
        .routes(routes!(settings::show, settings::replace, settings::patch))
        .routes(routes!(streams::list, streams::create))
        .routes(routes!(streams::show, streams::update, streams::delete))
        .routes(routes!(streams::pause))
        .routes(routes!(streams::resume))
        .routes(routes!(streams::rotate_secret))
        .routes(routes!(
            print_log::list,
            print_log::create,
            print_log::clear
        ))
        .routes(routes!(print_log::stats))
        .routes(routes!(print_log::update, print_log::delete))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(openapi::serve))
}
