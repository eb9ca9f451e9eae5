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

use crate::app::request_log::RequestId;

/// Sends the request's id (`crate::app::request_log`, which also sends it as `X-Request-Id`, the
/// header WorkOS's clients read) back in a door's own header too (`X-Retraced-RequestId` for
/// Retraced), so a client's report can be matched to the server's log. Use as
/// `middleware::from_fn(|r, n| request_id(HEADER, r, n))`.
pub async fn request_id(header: HeaderName, request: Request, next: Next) -> Response {
    let id = request.extensions().get::<RequestId>().cloned();
    let mut response = next.run(request).await;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id.0).ok()) {
        response.headers_mut().insert(header, value);
    }
    response
}
