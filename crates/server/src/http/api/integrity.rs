//! `/v1/integrity/*`: verify the organization's chain, list signed checkpoints, and the public
//! key that verifies them.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use stele_store::{Scope, VerifyReport};

use super::{Params, params};
use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::{ApiError, Result};

const DEFAULT_CHECKPOINTS: usize = 100;
const MAX_CHECKPOINTS: usize = 1000;

/// Recomputes the chain from the stored entries and checks every checkpoint's signature and
/// content. `ok: false` names the first bad `seq` and why.
pub async fn verify(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<VerifyReport>> {
    auth.require(Scope::Read)?;
    let report = state
        .store
        .verify(auth.key.org, Some(&state.public_key))
        .await?;
    Ok(Json(report))
}

/// Signed checkpoints, newest first (`limit`, default 100, at most 1000).
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
pub async fn public_key(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "algorithm": "ed25519",
        "public_key": state.public_key.to_hex(),
        "key_id": state.public_key.key_id(),
    }))
}
