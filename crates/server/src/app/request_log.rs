//! One log line per request, and a request id on every answer.
//!
//! - **Request id** ([`request_id`]): the client's `X-Request-Id` when it is a plausible id (at
//!   most 128 characters of letters, digits and `-_.:`; anything else could be a log-forging
//!   attempt or a whole payload), otherwise a fresh `req_…`. It is sent back in `X-Request-Id`,
//!   kept in the request's extensions for the doors that answer it in their own header as well
//!   (`crate::compat`), and is a field of the request's log span.
//! - **Request log** ([`layer`], tower-http's trace layer): a span per request with the method,
//!   the route pattern (never the path as sent, which may hold ids and personal data), the
//!   request id, and, once the credential is read, the organization and the key's id
//!   ([`note_caller`]; never the key itself). When the answer is ready, one event under the
//!   target `stele::request`: the status and the latency. Nothing of a body, a query string or a
//!   header value other than the request id is logged.
//!
//! The line is an `info` event, so `STELE_LOG=info` (the default) shows it; `STELE_LOG=info,
//! stele::request=warn` keeps the rest and drops it. Its shape follows `STELE_LOG_FORMAT`
//! ([`crate::app::logging`]): text, or one JSON object per line.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use stele_service::random;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::app::metrics::{method_label, route_of};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The most characters a client's request id may have to be kept.
const MAX_REQUEST_ID: usize = 128;

/// The request's id, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Takes or makes the request's id and sends it back (see the module's comment).
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| plausible(v))
        .map(str::to_owned)
        .unwrap_or_else(|| random::token("req_", 12));
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

fn plausible(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The trace layer that logs each request (see the module's comment).
pub type Layer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request) -> Span,
    (),
    fn(&Response, Duration, &Span),
    (),
    (),
    (),
>;

pub fn layer() -> Layer {
    TraceLayer::new_for_http()
        .make_span_with(span as fn(&Request) -> Span)
        .on_request(())
        .on_response(finished as fn(&Response, Duration, &Span))
        .on_body_chunk(())
        .on_eos(())
        // The response's line says everything a failure would: one line per request.
        .on_failure(())
}

fn span(request: &Request) -> Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map_or("", |id| id.0.as_str());
    tracing::info_span!(
        "request",
        method = method_label(request.method()),
        route = %route_of(request),
        request_id = %id,
        org = tracing::field::Empty,
        key_id = tracing::field::Empty,
    )
}

fn finished(response: &Response, latency: Duration, _span: &Span) {
    tracing::info!(
        target: "stele::request",
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}

/// Names the caller in the request's log line: the organization it acts for and the key's id
/// (its public id, never its secret). Called by the extractors that read a credential.
pub fn note_caller(org_id: &str, key_id: Option<&str>) {
    let span = Span::current();
    span.record("org", org_id);
    if let Some(key_id) = key_id {
        span.record("key_id", key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_request_ids_are_kept() {
        assert!(plausible("req_7f3a9c"));
        assert!(plausible("4bf92f35-77b3-4da6-a3ce-929d0e0e4736"));
        assert!(!plausible(""));
        assert!(!plausible("a b"));
        assert!(!plausible("id\"} forged"));
        assert!(!plausible(&"x".repeat(MAX_REQUEST_ID + 1)));
    }
}
