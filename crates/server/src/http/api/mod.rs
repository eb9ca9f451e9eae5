//! The v1 API, one module per resource.

pub mod entities;
pub mod erasure;
pub mod events;
pub mod export;
pub mod export_jobs;
pub mod facets;
pub mod health;
pub mod integrity;
pub mod print_log;
pub mod settings;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use serde_json::{Value, json};
use stele_core::filter::PageRequest;
use stele_store::Page;

use super::error::{ApiError, Result};

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

pub fn page_json(page: Page) -> Value {
    json!({
        "entries": page.entries.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
        "prev_cursor": page.prev_cursor.map(|c| c.to_string()),
        "total": page.total,
        "total_exact": page.total_exact,
    })
}
