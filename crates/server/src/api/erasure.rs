//! `POST /v1/erasure`: GDPR erasure of one person (admin scope), and
//! `POST /v1/events/{id}/redactions`: redaction of fields of one entry (admin scope).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use stele_archive::ArchiveErasure;
use stele_core::time::now_millis;
use stele_store::{ErasureOutcome, RedactionOutcome, Scope};

use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::state::AppState;
use stele_service::erasure::{self, ErasureError, Org, RedactionError, Requester};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// An actor id or email (matched as either).
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    other: Vec<String>,
    /// Why (a ticket number, say); kept in the erasure's own entry.
    #[serde(default)]
    reason: Option<String>,
}

/// The answer: the database erasure, and what it changed in the archive when one is configured.
#[derive(Serialize)]
pub struct ErasureResponse {
    #[serde(flatten)]
    outcome: ErasureOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    archive: Option<ArchiveErasure>,
}

/// Erases the person (`stele_service::erasure`, which says how). An archive that cannot be
/// rewritten is a 500 after the database erasure was made: the request can be repeated.
#[utoipa::path(
    post, path = "/v1/erasure", tag = "erasure", operation_id = "erasePerson",
    summary = "Erase a person",
    description = "Wherever an entry mentions the person (as actor, as entity, in text, changes and metadata) they become a stable pseudonym; the chain still verifies; the erasure is recorded. Needs the `admin` scope.",
    request_body = schemas::ErasureRequest,
    responses(
        (status = 200, description = "The person is erased wherever an entry mentioned them; the erasure is recorded", body = schemas::ErasureResponse),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Json<ErasureRequest>, JsonRejection>,
) -> Result<Json<ErasureResponse>> {
    auth.require(Scope::Admin)?;
    let Json(request) = body.map_err(body_error)?;
    let erased = erasure::erase(
        state.store.as_ref(),
        erasure::Copies {
            archive: state.archive.clone(),
            exports: state.exports.dir(),
        },
        &state.pseudonym_secret,
        Org {
            key: auth.key.org,
            id: &auth.key.org_id,
        },
        erasure::ErasureRequest {
            actor: request.actor.as_deref(),
            id: request.id.as_deref(),
            email: request.email.as_deref(),
            name: request.name.as_deref(),
            other: &request.other,
            reason: request.reason.as_deref(),
        },
        Requester::ApiKey { id: &auth.key.id },
        now_millis(),
    )
    .await
    .map_err(|e| match e {
        ErasureError::Invalid { field, message } => ApiError::field("invalid_body", field, message),
        ErasureError::Store(e) => e.into(),
        e @ ErasureError::Archive { .. } => ApiError::Internal(e.to_string()),
    })?;
    Ok(Json(ErasureResponse {
        outcome: erased.outcome,
        archive: erased.archive,
    }))
}

fn body_error(e: JsonRejection) -> ApiError {
    // Too large is the body limit's 413, as on every endpoint, not a bad body.
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is larger than this server accepts".into())
    } else {
        ApiError::bad_request("invalid_body", e.body_text())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionRequest {
    /// The fields to redact (`changes.access_code`, `metadata.token`, `description`, …).
    fields: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// Redacts fields of one entry (`stele_service::erasure::redact`).
#[utoipa::path(
    post, path = "/v1/events/{id}/redactions", tag = "erasure", operation_id = "redactEntry",
    summary = "Redact fields of an entry",
    description = "Replaces the named fields of one entry; the chain still verifies and the redaction is recorded. Needs the `admin` scope.",
    request_body = schemas::RedactionRequest,
    responses(
        (status = 200, description = "The fields are redacted; the redaction is recorded", body = schemas::RedactionResponse),
        (status = 404, description = "No such entry", body = schemas::Error),
    ),
)]
pub async fn redact(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: std::result::Result<Json<RedactionRequest>, JsonRejection>,
) -> Result<Json<RedactionOutcome>> {
    auth.require(Scope::Admin)?;
    let Json(request) = body.map_err(body_error)?;
    let outcome = erasure::redact(
        state.store.as_ref(),
        auth.key.org,
        erasure::RedactionRequest {
            id: &id,
            fields: &request.fields,
            reason: request.reason.as_deref(),
        },
        Requester::ApiKey { id: &auth.key.id },
        now_millis(),
    )
    .await
    .map_err(|e| match e {
        RedactionError::Invalid { field, message } => {
            ApiError::field("invalid_body", field, message)
        }
        RedactionError::NotFound => ApiError::NotFound("not found"),
        RedactionError::Store(e) => e.into(),
    })?;
    Ok(Json(outcome))
}
