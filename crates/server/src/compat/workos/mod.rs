//! WorkOS Audit Logs' API, as `@workos-inc/node` calls it, at the root of Stele's listener (the
//! SDK drops any path prefix of its host). Each route reads WorkOS's body, calls the use case the
//! native API calls, and answers in WorkOS's shapes, errors included ([`error`]); no rule of its
//! own lives here beyond the translation.
//!
//! | route | key (scope) | Stele use case |
//! |---|---|---|
//! | `POST /audit_logs/events` | `ingest` | recording events, as `POST /v1/events` ([`events`]) |
//! | `POST /audit_logs/exports`, `GET /audit_logs/exports/{id}` | `export` | export jobs ([`exports`]) |
//! | `POST /audit_logs/actions/{action}/schemas` | platform key, `admin` | action schemas ([`schemas`]) |
//! | `GET /audit_logs/actions/{action}/schemas` | platform key, `read` | action schemas |
//! | `GET /organizations/{id}/audit_logs_retention` | `read` | settings ([`retention`]) |
//! | `PUT /organizations/{id}/audit_logs_retention` | `admin` | settings |
//! | `POST /portal/generate_link` | `viewer` | viewer tokens ([`portal`]) |
//!
//! The key is `Authorization: Bearer <key>`: a platform key names any tenant organization (by id
//! or external id, where WorkOS puts an organization id), an organization's key only its own
//! ([`auth`]). Every answer carries an `X-Request-ID`, which the SDK attaches to its exceptions: the
//! header every answer of Stele's carries (`crate::app::request_log`), under the name WorkOS uses.

pub mod auth;
pub mod error;
pub mod events;
pub mod exports;
pub mod portal;
pub mod retention;
pub mod schemas;

use axum::Router;
use axum::routing::{get, post};

use crate::app::state::AppState;

/// The WorkOS routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit_logs/events", post(events::create))
        .route("/audit_logs/exports", post(exports::create))
        .route("/audit_logs/exports/{id}", get(exports::show))
        .route(
            "/audit_logs/actions/{action}/schemas",
            post(schemas::create).get(schemas::list),
        )
        .route(
            "/organizations/{id}/audit_logs_retention",
            get(retention::show).put(retention::update),
        )
        .route("/portal/generate_link", post(portal::generate_link))
}
