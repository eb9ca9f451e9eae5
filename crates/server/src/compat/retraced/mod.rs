//! Retraced's publisher API and its embedded viewer's API under `/auditlog` (Retraced's own
//! default path, so a client changes only its host), as `@retracedhq/retraced`, `retraced-go`
//! and `@retracedhq/logs-viewer` call them.
//!
//! - [`publisher`]: events (one, or a bulk of up to 50) and viewer tokens;
//! - [`publisher_search`]: the publisher's GraphQL search, in the group its query names;
//! - [`viewer`]: the routes of Retraced's embedded viewer (`@retracedhq/logs-viewer`) under
//!   `/auditlog/viewer/v1`: its sessions, search, saved exports and API tokens, with CORS;
//! - [`graphql`]: the search's GraphQL schema, which both searches execute
//!   (`stele_service::retraced` answers it);
//! - [`auth`]: `Authorization: token=KEY` with a platform key, on the platform's project id;
//! - [`error`]: Retraced's error bodies;
//! - [`hash`]: the receipt hash Retraced answers each stored event with, which the client library
//!   recomputes and compares (it throws on a mismatch).

pub mod auth;
pub mod error;
pub mod graphql;
pub mod hash;
pub mod publisher;
pub mod publisher_search;
pub mod viewer;

use axum::Router;
use axum::http::HeaderName;
use axum::middleware;
use axum::routing::{get, post};

use crate::app::state::AppState;
use crate::compat;

/// The response header that names a request, as Retraced's server names it.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-retraced-requestid");

/// Where Retraced's publisher API is, under Retraced's default `/auditlog`.
const PUBLISHER: &str = "/auditlog/publisher/v1/project/{project_id}";

/// The Retraced routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{PUBLISHER}/event"), post(publisher::create_event))
        .route(
            &format!("{PUBLISHER}/event/bulk"),
            post(publisher::create_events),
        )
        .route(
            &format!("{PUBLISHER}/viewertoken"),
            get(publisher::viewer_token),
        )
        .route(
            &format!("{PUBLISHER}/graphql"),
            post(publisher_search::search),
        )
        .merge(viewer::router())
        .layer(middleware::from_fn(|request, next| {
            compat::request_id(REQUEST_ID_HEADER, request, next)
        }))
}
