//! `/api/v1/print-log/`: the Bambuddy-compatible print log (docs/print-log.md).
//!
//! - `POST /api/v1/print-log/` records a print (`ingest`), 201 with the row.
//! - `GET /api/v1/print-log/` lists rows newest first as `{"items": [...], "total": n}`, and
//!   `GET /api/v1/print-log/stats` sums them up, with the same filters (`read`).
//! - `PATCH /api/v1/print-log/{id}` reclassifies a row, `DELETE /api/v1/print-log/{id}` removes
//!   one (`printlog.update|delete.own` for the key's own rows, `.all` for any), and
//!   `DELETE /api/v1/print-log/` clears the log (`printlog.delete.all`).
//!
//! Every path works with and without a trailing slash. Who may do what, how requests are read
//! and the audit entries each change writes are in [`stele_service::print_log`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use stele_store::{PrintId, StoreError};

use super::{Params, params};
use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::app::state::AppState;
use stele_service::print_log::{self as log, Caller, Denied, Invalid, Query};

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ApiError::Forbidden(denied.0)
    }
}

const NO_SUCH_PRINT: &str = "this organization's print log has no entry with this id";

fn invalid(code: &'static str) -> impl Fn(Invalid) -> ApiError {
    move |e| ApiError::field(code, &e.field, e.message)
}

fn json_body(body: std::result::Result<Bytes, BytesRejection>) -> Result<Value> {
    // Read as JSON whatever the Content-Type says, as `POST /v1/events` does (`curl -d`).
    serde_json::from_slice(&body?)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("the body is not JSON: {e}")))
}

/// The `{id}` of a path: an integer, or a 400 that names it.
fn print_id(raw: &str) -> Result<PrintId> {
    raw.parse::<i64>().map(PrintId::new).map_err(|_| {
        ApiError::field(
            "invalid_parameter",
            "id",
            "must be an integer (a print log entry's id)",
        )
    })
}

fn query(raw: Params) -> Result<Query> {
    let params = params(raw)?;
    Ok(log::parse_query(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    let caller = Caller::from_key(&auth.key);
    caller.may_record()?;
    let body = json_body(body)?;
    let fields = log::parse_new_print(&body, &caller.identity, state.clock.now())
        .map_err(invalid("invalid_print"))?;
    let print = state
        .store
        .record_print(auth.key.org, fields, log::audit(&caller, &state.clock))
        .await?;
    Ok((StatusCode::CREATED, Json(log::print_json(&print))))
}

pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    raw: Params,
) -> Result<Json<Value>> {
    Caller::from_key(&auth.key).may_read()?;
    let q = query(raw)?;
    let page = state
        .store
        .list_prints(auth.key.org, &q.filter, q.limit, q.offset)
        .await?;
    Ok(Json(json!({
        "items": page.items.iter().map(log::print_json).collect::<Vec<_>>(),
        "total": page.total,
    })))
}

pub async fn stats(
    State(state): State<AppState>,
    auth: Authenticated,
    raw: Params,
) -> Result<Json<Value>> {
    Caller::from_key(&auth.key).may_read()?;
    let q = query(raw)?;
    let stats = state.store.print_stats(auth.key.org, &q.filter).await?;
    Ok(Json(log::stats_json(&stats)))
}

pub async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let caller = Caller::from_key(&auth.key);
    caller.may_update_some()?;
    let id = print_id(&id)?;
    let classification =
        log::parse_classification(&json_body(body)?).map_err(invalid("invalid_classification"))?;
    let org = auth.key.org;
    // Whose row it is cannot change (only the classification can, and ids are never reused),
    // so checking it before the write is as good as checking it inside.
    let print = state
        .store
        .print(org, id)
        .await?
        .ok_or(ApiError::NotFound(NO_SUCH_PRINT))?;
    caller.may_update(&print)?;
    let (_, after) = state
        .store
        .classify_print(org, id, classification, log::audit(&caller, &state.clock))
        .await
        .map_err(not_found)?;
    Ok(Json(log::print_json(&after)))
}

pub async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let caller = Caller::from_key(&auth.key);
    caller.may_delete_some()?;
    let id = print_id(&id)?;
    let org = auth.key.org;
    let print = state
        .store
        .print(org, id)
        .await?
        .ok_or(ApiError::NotFound(NO_SUCH_PRINT))?;
    caller.may_delete(&print)?;
    state
        .store
        .delete_print(org, id, log::audit(&caller, &state.clock))
        .await
        .map_err(not_found)?;
    Ok(Json(json!({"status": "deleted", "id": id})))
}

pub async fn clear(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Value>> {
    let caller = Caller::from_key(&auth.key);
    caller.may_clear()?;
    let deleted = state
        .store
        .clear_prints(auth.key.org, log::audit(&caller, &state.clock))
        .await?;
    Ok(Json(json!({ "deleted": deleted })))
}

/// A row that went between the lookup and the write (deleted by someone else meanwhile).
fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound(NO_SUCH_PRINT),
        other => other.into(),
    }
}
