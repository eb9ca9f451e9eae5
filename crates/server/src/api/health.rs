//! `/readyz`: whether this process can serve requests now, for load balancers and orchestrators.
//! (`/healthz` is liveness: it answers while the process runs, whatever the database does, so a
//! database outage takes servers out of rotation without getting them restarted.)

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use stele_store::StoreError;

use crate::api::openapi::schemas;
use crate::app::state::AppState;

/// How long the database may take to answer before the process is reported not ready. Health
/// checkers give up after a few seconds; an answer after theirs helps nobody.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// `/healthz`: `ok` while the process runs, whatever the database does.
#[utoipa::path(
    get, path = "/healthz", tag = "health", security(()), operation_id = "live",
    summary = "Liveness",
    description = "`ok` while the process runs, whatever the database does.",
    responses(
        (status = 200, description = "The process runs", body = String, content_type = "text/plain", example = "ok"),
    ),
)]
pub async fn live() -> &'static str {
    "ok"
}

/// 200 `{"status": "ready", "checks": {"database": {"status": "ok"}, "retention": …,
/// "integrity": …}}` when the database answers, otherwise 503 `{"status": "not_ready", "checks":
/// {"database": {"status": "unavailable", "error": "…"}, …}}`. The error is the store's message,
/// which never holds the database password (URLs in store errors are redacted).
#[utoipa::path(
    get, path = "/readyz", tag = "health", security(()), operation_id = "ready",
    summary = "Readiness",
    description = "`ready` while the database answers (with the last retention run and the background verification); 503 `not_ready` otherwise.",
    responses(
        (status = 200, description = "Ready: the database answers", body = schemas::Readiness),
        (status = 503, description = "Not ready, naming the check that failed", body = schemas::Readiness),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let checked = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, state.store.list_orgs()).await;
    let error = match checked {
        Ok(Ok(_)) => {
            return (
                StatusCode::OK,
                Json(json!({"status": "ready", "checks": {
                    "database": {"status": "ok"},
                    "retention": retention_check(&state),
                    "integrity": integrity_check(&state),
                }})),
            );
        }
        Ok(Err(StoreError::Unavailable(m) | StoreError::Other(m))) => m,
        Ok(Err(other)) => other.to_string(),
        Err(_) => format!("no answer within {} s", DATABASE_CHECK_TIMEOUT.as_secs()),
    };
    // Debug only: health checkers ask every few seconds, and the failing requests log already.
    tracing::debug!(%error, "not ready: the database check failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "status": "not_ready",
            "checks": {
                "database": {"status": "unavailable", "error": error},
                "retention": retention_check(&state),
                "integrity": integrity_check(&state),
            },
        })),
    )
}

/// The last retention run: `failing` while its archive could not be written (expired entries
/// then stay in the database). It does not make the process unready: ingest and reads still work.
fn retention_check(state: &AppState) -> Value {
    let status = state.retention.lock().expect("retention status").clone();
    json!({
        "status": if status.archive_error.is_some() { "failing" } else { "ok" },
        "last_run_at": status.last_run_at,
        "archive_error": status.archive_error,
    })
}

/// What the background verification of the chains last found: `failing` with each failed
/// organization's first problem (`org_id`, `seq`, `kind`, `message`) while any chain does not
/// verify; `off` when the operator turned it off. Like retention, it does not make the process
/// unready: the entries that do verify are still served, and the operator must look.
fn integrity_check(state: &AppState) -> Value {
    let status = state.integrity.lock().expect("integrity status").clone();
    let summary = match (status.off, status.problems.is_empty()) {
        (true, _) => "off",
        (false, true) => "ok",
        (false, false) => "failing",
    };
    json!({
        "status": summary,
        "last_pass_at": status.last_pass_at,
        "last_full_pass_at": status.last_full_pass_at,
        "problems": status.problems,
    })
}
