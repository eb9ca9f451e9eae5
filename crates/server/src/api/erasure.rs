//! `POST /v1/erasure`: GDPR erasure of one person's identity (admin scope).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};
use stele_archive::ArchiveErasure;
use stele_core::time::now_millis;
use stele_store::{ErasureOutcome, Scope};

use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::app::state::AppState;
use stele_service::erasure::{self, ErasureError, Org, Requester};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// The actor id or email whose identity is erased.
    actor: String,
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
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Json<ErasureRequest>, JsonRejection>,
) -> Result<Json<ErasureResponse>> {
    auth.require(Scope::Admin)?;
    let Json(request) = body.map_err(|e| {
        // Too large is the body limit's 413, as on every endpoint, not a bad body.
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the request body is larger than this server accepts".into())
        } else {
            ApiError::bad_request("invalid_body", e.body_text())
        }
    })?;
    let erased = erasure::erase(
        state.store.as_ref(),
        state.archive.clone(),
        &state.pseudonym_secret,
        Org {
            key: auth.key.org,
            id: &auth.key.org_id,
        },
        erasure::ErasureRequest {
            actor: &request.actor,
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
