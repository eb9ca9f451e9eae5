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
use stele_store::PrintId;

use super::{Params, params};
use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::state::AppState;
use stele_service::print_log::{self as log, Caller, ChangeError, Denied, Invalid, Query};

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

#[utoipa::path(
    post, path = "/api/v1/print-log/", tag = "print log", operation_id = "recordPrint",
    summary = "Record a print",
    description = "Adds a row to the print log; its creation is recorded in the trail.",
    request_body = schemas::PrintLogRecord,
    responses(
        (status = 201, description = "The row (its creation is recorded in the trail)", body = schemas::PrintLogRecord),
    ),
)]
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

#[utoipa::path(
    get, path = "/api/v1/print-log/", tag = "print log", operation_id = "listPrints",
    summary = "List prints",
    description = "The print log, newest first, with Bambuddy's filters.",
    responses(
        (status = 200, description = "Rows, newest first", body = schemas::PrintLogPage),
    ),
)]
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

#[utoipa::path(
    get, path = "/api/v1/print-log/stats", tag = "print log", operation_id = "getPrintStats",
    summary = "Print statistics",
    description = "Figures over every row the filters match, computed at the request.",
    responses(
        (status = 200, description = "Figures over every matching row", body = schemas::PrintLogStats),
    ),
)]
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

#[utoipa::path(
    patch, path = "/api/v1/print-log/{id}", tag = "print log", operation_id = "reclassifyPrint",
    summary = "Reclassify a print",
    description = "Changes a row's status or failure reason (`printlog.update.own` or `.all`); recorded in the trail.",
    request_body = Object,
    responses(
        (status = 200, description = "The row as reclassified", body = schemas::PrintLogRecord),
        (status = 404, description = "No such row", body = schemas::Error),
    ),
)]
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
    let (_, after) = log::classify(
        state.store.as_ref(),
        auth.key.org,
        &caller,
        id,
        classification,
        &state.clock,
    )
    .await?;
    Ok(Json(log::print_json(&after)))
}

#[utoipa::path(
    delete, path = "/api/v1/print-log/{id}", tag = "print log", operation_id = "deletePrint",
    summary = "Delete a print",
    description = "Removes one row (`printlog.delete.own` or `.all`); recorded in the trail.",
    responses(
        (status = 200, description = "The row is deleted", body = Object, example = json!({"status": "deleted", "id": 42})),
        (status = 404, description = "No such row", body = schemas::Error),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let caller = Caller::from_key(&auth.key);
    caller.may_delete_some()?;
    let id = print_id(&id)?;
    log::delete(
        state.store.as_ref(),
        auth.key.org,
        &caller,
        id,
        &state.clock,
    )
    .await?;
    Ok(Json(json!({"status": "deleted", "id": id})))
}

#[utoipa::path(
    delete, path = "/api/v1/print-log/", tag = "print log", operation_id = "clearPrintLog",
    summary = "Clear the print log",
    description = "Removes every row (needs `printlog.delete.all`); recorded in the trail.",
    responses(
        (status = 200, description = "How many rows were deleted", body = Object, example = json!({"deleted": 3})),
    ),
)]
pub async fn clear(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Value>> {
    let caller = Caller::from_key(&auth.key);
    let deleted = log::clear(state.store.as_ref(), auth.key.org, &caller, &state.clock).await?;
    Ok(Json(json!({ "deleted": deleted })))
}

/// A change refused or failed, as the print log API answers it.
impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Denied(denied) => denied.into(),
            ChangeError::NotFound => ApiError::NotFound(NO_SUCH_PRINT),
            ChangeError::Store(e) => e.into(),
        }
    }
}
