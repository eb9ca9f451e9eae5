//! The query parameters each API endpoint reads; any other is a 400 naming it.
//!
//! Why refuse rather than ignore: a misspelled filter (`?acton=update`) that is silently dropped
//! answers with the whole trail as if it had been applied, and an auditor reading that answer
//! has no way to tell. So every endpoint of the API names what it reads here, in one table, and
//! [`reject_unknown`] (a layer on the API's routes) answers anything else with
//! `400 invalid_parameter` naming it, before the handler runs. The handlers still read and check
//! the values; this checks only the names.
//!
//! The doors for other services' clients (WorkOS, Retraced) and the console are not covered:
//! those clients send what their own services accept, and the console's forms are Stele's own.

use axum::extract::{MatchedPath, Query, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stele_core::params::PAGE_PARAMETERS;
use stele_service::print_log::QUERY_PARAMETERS as PRINT_LOG_PARAMETERS;

use crate::api::error::ApiError;

/// An export's parameters: the list's filters, its format, and the list's `limit` and `cursor`
/// (accepted and ignored, so that a list URL's query string can be reused as it is).
const EXPORT_PARAMETERS: &[&[&str]] = &[&PAGE_PARAMETERS, &["format"]];

/// What the endpoint at `route` (the router's pattern) reads for `method`, as lists to join.
pub(crate) fn accepted(method: &Method, route: &str) -> &'static [&'static [&'static str]] {
    let get = *method == Method::GET || *method == Method::HEAD;
    match route {
        "/v1/events" | "/v1/entities/{entity_type}/{entity_id}/events" if get => {
            &[&PAGE_PARAMETERS]
        }
        "/v1/export" if get => EXPORT_PARAMETERS,
        "/v1/exports/{id}/download" if get => &[&["token"]],
        "/v1/integrity/checkpoints" if get => &[&["limit"]],
        "/v1/integrity/consistency" if get => &[&["from", "to"]],
        "/v1/integrity/verify" if get => &[&["full"]],
        "/v1/organizations" if get => &[&["limit", "after", "external_id"]],
        "/v1/organizations/{org}" if *method == Method::DELETE => &[&["confirm"]],
        "/api/v1/print-log"
        | "/api/v1/print-log/"
        | "/api/v1/print-log/stats"
        | "/api/v1/print-log/stats/"
            if get =>
        {
            &[PRINT_LOG_PARAMETERS]
        }
        _ => &[],
    }
}

/// Answers a request with a query parameter its endpoint does not read with 400, naming it.
/// Preflight requests (`OPTIONS`) pass: CORS answers them, and the request that follows is
/// checked.
pub async fn reject_unknown(
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().query().is_none() || request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let Some(route) = matched else {
        return next.run(request).await;
    };
    // An unreadable query string is refused as the handlers that read one refuse it
    // (`api::params`). Form decoding replaces bad percent-escapes rather than failing, so this
    // is rare; an endpoint that reads no parameter would otherwise not look at it at all.
    let pairs = match Query::<Vec<(String, String)>>::try_from_uri(request.uri()) {
        Ok(Query(pairs)) => pairs,
        Err(e) => return ApiError::bad_request("invalid_query", e.body_text()).into_response(),
    };
    let lists = accepted(request.method(), route.as_str());
    if let Some((name, _)) = pairs
        .iter()
        .find(|(name, _)| !lists.iter().any(|list| list.contains(&name.as_str())))
    {
        return unknown(name, lists).into_response();
    }
    next.run(request).await
}

fn unknown(name: &str, lists: &[&[&str]]) -> ApiError {
    let known: Vec<String> = lists
        .iter()
        .flat_map(|list| list.iter())
        .map(|n| format!("`{n}`"))
        .collect();
    let takes = if known.is_empty() {
        "this endpoint takes no query parameters".to_string()
    } else {
        format!("this endpoint takes {}", known.join(", "))
    };
    ApiError::field(
        "invalid_parameter",
        name,
        format!("is not a parameter of this endpoint ({takes})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_endpoints_take_the_list_parameters_and_others_none() {
        let list = accepted(&Method::GET, "/v1/events");
        assert!(list.iter().any(|l| l.contains(&"action")));
        assert!(!list.iter().any(|l| l.contains(&"acton")));
        assert!(accepted(&Method::POST, "/v1/events").is_empty());
        assert!(accepted(&Method::GET, "/v1/events/{id}").is_empty());
        let export = accepted(&Method::GET, "/v1/export");
        assert!(export.iter().any(|l| l.contains(&"format")));
        assert!(export.iter().any(|l| l.contains(&"q")));
    }
}
