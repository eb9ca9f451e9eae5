//! `POST /v1/erasure`: GDPR erasure of one person's identity (admin scope).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};
use stele_archive::ArchiveErasure;
use stele_core::chain::{erasure_record, pseudonym};
use stele_core::time::now_millis;
use stele_store::{Erasure, ErasureOutcome, Scope};

use crate::archive;
use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::{ApiError, Result};

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

/// Replaces the person's id, name, email, IP and user agent in every entry with a stable
/// pseudonym and records the erasure (System actor, `compliance` channel) without naming them;
/// then does the same to their entries in the retention archive, if there is one. An archive that
/// cannot be rewritten is a 500 after the database erasure was made: the request can be repeated
/// (the pseudonym is stable, and what is erased already stays as it is).
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Json<ErasureRequest>, JsonRejection>,
) -> Result<Json<ErasureResponse>> {
    auth.require(Scope::Admin)?;
    let Json(request) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let actor = request.actor.trim();
    if actor.is_empty() || actor.chars().count() > 256 {
        return Err(ApiError::field(
            "invalid_body",
            "actor",
            "must be 1 to 256 characters",
        ));
    }
    if request
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 1024)
    {
        return Err(ApiError::field(
            "invalid_body",
            "reason",
            "must be at most 1024 characters",
        ));
    }
    let org_id = auth.key.org_id.clone();
    let pseudonym = pseudonym(&state.pseudonym_secret, &org_id, actor);
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::Internal(format!("OS randomness: {e}")))?;
    let mut record = erasure_record(&pseudonym, request.reason.as_deref(), now_millis());
    record.context.api_key_id = Some(auth.key.id.clone());
    let outcome = state
        .store
        .erase_actor(
            auth.key.org,
            Erasure {
                actor: actor.to_string(),
                pseudonym: pseudonym.clone(),
                record,
                salt,
            },
        )
        .await?;
    let archive = archive::erase(
        state.archive.clone(),
        &org_id,
        actor,
        &pseudonym,
        now_millis(),
    )
    .await
    .map_err(|e| {
        ApiError::Internal(format!(
            "the database erasure is made ({} entries), but the archive was not rewritten: {e}",
            outcome.erased_entries
        ))
    })?;
    Ok(Json(ErasureResponse { outcome, archive }))
}
