//! Doors for other audit-log services' clients (issue 16): their wire protocols on top of Stele's
//! own use cases, so that a team moving to Stele changes a host name and not its code.
//!
//! - [`retraced`]: Retraced's publisher API, whose client library checks a receipt hash of each
//!   event it sent.
//! - [`workos`]: WorkOS Audit Logs' API (events, exports, schemas, retention, the Admin Portal
//!   link), at the root of the listener.
//! - [`vocabulary`]: how both services' actions and actor types map onto Stele's.
//!
//! A door here reads its service's wire format and calls the use cases of `stele_service`, as
//! `crate::api` does, sharing its key lookup (`crate::api::auth`) and turning its errors
//! (`crate::api::error`) into the service's own shapes.

pub mod retraced;
pub mod vocabulary;
pub mod workos;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use stele_service::random;
use tracing::Instrument;

/// Names each request of a door with a fresh random id, sent back in the door's own header
/// (`X-Request-ID` for WorkOS, `X-Retraced-RequestId` for Retraced) and logged with any failure,
/// so a client's report can be matched to the server's log. Use as
/// `middleware::from_fn(|r, n| request_id(HEADER, r, n))`.
pub async fn request_id(header: HeaderName, request: Request, next: Next) -> Response {
    let id = random::token("req_", 12);
    let span = tracing::info_span!("compat", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(header, value);
    }
    response
}
