//! `/v1/integrity/*`: verify the organization's chain, list signed checkpoints, and the public
//! key that verifies them.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use stele_core::Seq;
use stele_core::proof::{ConsistencyProof, InclusionProof};
use stele_service::integrity::{self, Extent, ProofRefused};
use stele_store::{Scope, VerifyReport};

use super::{Params, params};
use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::state::AppState;

const DEFAULT_CHECKPOINTS: usize = 100;
const MAX_CHECKPOINTS: usize = 1000;

/// Recomputes the chain from the stored entries and checks the checkpoints' signatures and
/// content: what came after the last checkpoint a verification passed, or everything with
/// `full=true`. `ok: false` names the first bad `seq` and why.
#[utoipa::path(
    get, path = "/v1/integrity/verify", tag = "integrity", operation_id = "verifyChain",
    summary = "Verify the chain",
    description = "Recomputes the hash chain and checks the signed checkpoints: what came after the last checkpoint a verification passed, or everything with `full=true`. `ok: false` names the first bad `seq` and why.",
    responses(
        (status = 200, description = "The verification's report", body = schemas::VerifyReport),
    ),
)]
pub async fn verify(
    State(state): State<AppState>,
    auth: Authenticated,
    query: Params,
) -> Result<Json<VerifyReport>> {
    auth.require(Scope::Read)?;
    let mut extent = Extent::SinceLastVerified;
    for (key, value) in params(query)? {
        if key == "full" {
            extent = match value.as_str() {
                "true" => Extent::Full,
                "false" => Extent::SinceLastVerified,
                _ => {
                    return Err(ApiError::field(
                        "invalid_parameter",
                        "full",
                        "must be true or false",
                    ));
                }
            };
        }
    }
    let report = integrity::verify(
        state.store.as_ref(),
        auth.key.org,
        Some(&state.public_key),
        extent,
    )
    .await?;
    Ok(Json(report))
}

/// Signed checkpoints, newest first (`limit`, default 100, at most 1000).
#[utoipa::path(
    get, path = "/v1/integrity/checkpoints", tag = "integrity", operation_id = "listCheckpoints",
    summary = "Signed checkpoints",
    description = "The organization's signed checkpoints, newest first, with the key that signed them.",
    responses(
        (status = 200, description = "Signed checkpoints, newest first", body = schemas::Checkpoints),
    ),
)]
pub async fn checkpoints(
    State(state): State<AppState>,
    auth: Authenticated,
    query: Params,
) -> Result<Json<Value>> {
    auth.require(Scope::Read)?;
    let mut limit = DEFAULT_CHECKPOINTS;
    for (key, value) in params(query)? {
        if key == "limit" {
            limit = value
                .parse()
                .ok()
                .filter(|n| (1..=MAX_CHECKPOINTS).contains(n))
                .ok_or_else(|| {
                    ApiError::field(
                        "invalid_parameter",
                        "limit",
                        format!("must be an integer from 1 to {MAX_CHECKPOINTS}"),
                    )
                })?;
        }
    }
    let list = state.store.checkpoints(auth.key.org, limit).await?;
    Ok(Json(json!({
        "public_key": state.public_key.to_hex(),
        "key_id": state.public_key.key_id(),
        "checkpoints": list,
    })))
}

/// The Ed25519 public key that verifies checkpoints. Public by nature: no key needed.
#[utoipa::path(
    get, path = "/v1/integrity/public-key", tag = "integrity", security(()), operation_id = "getPublicKey",
    summary = "The signing key",
    description = "The Ed25519 public key that verifies checkpoints and proofs. Public: no key needed.",
    responses(
        (status = 200, description = "The key that verifies checkpoints", body = schemas::PublicKey),
    ),
)]
pub async fn public_key(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "algorithm": "ed25519",
        "public_key": state.public_key.to_hex(),
        "key_id": state.public_key.key_id(),
    }))
}

/// An inclusion proof of one entry in the latest signed checkpoint
/// (`stele_service::integrity::inclusion_proof`).
#[utoipa::path(
    get, path = "/v1/events/{id}/proof", tag = "integrity", operation_id = "getInclusionProof",
    summary = "Prove an entry",
    description = "An RFC 6962 inclusion proof of the entry in the latest signed checkpoint, checkable with the public key alone (`stele proof verify`, tools/independent_verify.py).",
    responses(
        (status = 200, description = "The entry's inclusion proof", body = schemas::InclusionProof),
        (status = 404, description = "No such entry", body = schemas::Error),
        (status = 409, description = "No signed checkpoint covers the entry yet", body = schemas::Error),
    ),
)]
pub async fn inclusion(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<InclusionProof>> {
    auth.require(Scope::Read)?;
    let proof = integrity::inclusion_proof(state.store.as_ref(), auth.key.org, &id)
        .await
        .map_err(refused)?;
    Ok(Json(proof))
}

/// A consistency proof between two signed checkpoints (`from` and `to` are their `seq`s).
#[utoipa::path(
    get, path = "/v1/integrity/consistency", tag = "integrity", operation_id = "getConsistencyProof",
    summary = "Prove two checkpoints consistent",
    description = "An RFC 6962 consistency proof that the newer checkpoint's tree extends the older one's (`from` and `to` are their `seq`s).",
    responses(
        (status = 200, description = "The consistency proof between the two checkpoints", body = schemas::ConsistencyProof),
        (status = 404, description = "No checkpoint at one of the two seqs", body = schemas::Error),
    ),
)]
pub async fn consistency(
    State(state): State<AppState>,
    auth: Authenticated,
    query: Params,
) -> Result<Json<ConsistencyProof>> {
    auth.require(Scope::Read)?;
    let (mut from, mut to) = (None, None);
    for (key, value) in params(query)? {
        let slot = match key.as_str() {
            "from" => &mut from,
            "to" => &mut to,
            _ => continue,
        };
        *slot = Some(
            value
                .parse::<Seq>()
                .ok()
                .filter(|n| *n >= Seq::FIRST)
                .ok_or_else(|| {
                    ApiError::field("invalid_parameter", &key, "must be the seq of a checkpoint")
                })?,
        );
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::field(
            "invalid_parameter",
            "from",
            "`from` and `to` are required",
        ));
    };
    let proof = integrity::consistency_proof(state.store.as_ref(), auth.key.org, from, to)
        .await
        .map_err(refused)?;
    Ok(Json(proof))
}

/// A refused proof in the API's terms.
fn refused(e: ProofRefused) -> ApiError {
    match e {
        ProofRefused::NoSuchEntry => {
            ApiError::NotFound("no entry with this id in your organization")
        }
        ProofRefused::NotCoveredYet => ApiError::Conflict(e.to_string()),
        ProofRefused::NoCheckpointAt { field, .. } => {
            ApiError::field("invalid_parameter", field, e.to_string())
        }
        ProofRefused::Backwards => {
            ApiError::field("invalid_parameter", "from", "must not be greater than `to`")
        }
        ProofRefused::Store(e) => e.into(),
    }
}
